#!/bin/bash
# Where the mma.sync dK/dV kernel's time goes (GPU machine, after tools/gpu_session.sh build):
# session 6's two knockouts, now from tools/dkdv_diag.sh (which has the rest):
#   nomma: every mma.sync of the dK/dV kernel replaced by one dependent FADD
#   noexp: the exponentials replaced by their arguments
VARIANTS="nomma noexp" exec bash "$(dirname "$0")/dkdv_diag.sh" "$@"
