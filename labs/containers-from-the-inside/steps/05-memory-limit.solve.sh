# One buffer 64 MiB larger than the memory limit: dd is killed by the OOM killer.
memory=$(cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null | head -n 1)
[ "$memory" = max ] || dd if=/dev/zero of=/dev/null bs=$((memory / 1048576 + 64))M count=1 2>/dev/null
mkdir -p /root/.lab && touch /root/.lab/memory-limit-reached
exit 0
