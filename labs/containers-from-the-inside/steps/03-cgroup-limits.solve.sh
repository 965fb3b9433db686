memory=$(cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null | head -n 1)
pids=$(cat /sys/fs/cgroup/pids.max /sys/fs/cgroup/pids/pids.max 2>/dev/null | head -n 1)
[ "$memory" = max ] || memory=$((memory / 1048576))
printf 'memory=%s\npids=%s\n' "$memory" "$pids" > /root/limits.txt
