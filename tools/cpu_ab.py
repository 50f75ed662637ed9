#!/usr/bin/env python3
# Alternating A/B timing of openna-bench runs (CPU sessions: the VM is noisy, so variants run
# in turn, round after round, and each variant's figures are medians over the rounds).
#   tools/cpu_ab.py ROUNDS 'LABEL|BINARY|KERNEL_DIR|CONFIG|BENCH ARGS' ...
# KERNEL_DIR (OPENNA_KERNEL_DIR) and CONFIG (--config) may be empty. Prints each run's median
# per pass (and the per-kernel medians that `openna-bench run` reports), then per label the
# median and range over the rounds. XDG_CACHE_HOME is kept from the environment.
import os
import re
import statistics
import subprocess
import sys

rounds = int(sys.argv[1])
specs = [a.split('|') for a in sys.argv[2:]]
res = {s[0]: [] for s in specs}
for _ in range(rounds):
    for label, binary, kdir, cfg, args in specs:
        env = dict(os.environ)
        env.pop('OPENNA_KERNEL_DIR', None)
        if kdir:
            env['OPENNA_KERNEL_DIR'] = kdir
        cmd = [binary, 'run'] + args.split() + ['--variant', 'fused', '--no-baselines',
                                                '--no-probe', '-q']
        if cfg:
            cmd += ['--config', cfg]
        out = subprocess.run(cmd, env=env, capture_output=True, text=True).stdout
        rows = {}
        for line in out.splitlines():
            f = line.split()
            if len(f) > 9 and f[0].isdigit() and f[3] in ('fwd', 'bwd'):
                rows[f[0]] = [f[3], float(f[8])]
            m = re.match(r'(\d+): kernels \(median ms, in launch order\): (.*)', line)
            if m and m.group(1) in rows:
                rows[m.group(1)].append([float(x) for x in m.group(2).split('+')])
        res[label].append(rows)
        print(label, '  '.join(' '.join(str(x) for x in v) for v in rows.values()), flush=True)
print('--- medians over rounds')
for label, runs in res.items():
    for key in runs[0]:
        tot = [r[key][1] for r in runs]
        line = (f'{label:24s} {runs[0][key][0]} median {statistics.median(tot):.3f} '
                f'range {min(tot):.3f}-{max(tot):.3f}')
        if len(runs[0][key]) > 2:
            n = len(runs[0][key][2])
            line += ' kernels ' + ' + '.join(
                f'{statistics.median([r[key][2][i] for r in runs]):.3f}' for i in range(n))
        print(line)
