// openna-bench (placeholder until the bench issue lands).
#include <cstdio>
int main() { std::puts("openna-bench"); return 0; }
