# Fill the sandbox up to its pids limit with 3-second sleeps, reading the count with the shell's
# own `read` (no fork), then start one shell in the last free slot: its own fork is the one
# refused. A refused fork in this script itself would end it and orphan its sleeps.
dir=/sys/fs/cgroup/pids
[ -f "$dir/pids.max" ] || dir=/sys/fs/cgroup
read -r max < "$dir/pids.max"
while read -r now < "$dir/pids.current" && [ "$now" -lt $((max - 1)) ]; do
  sleep 3 &
done
sh -c 'sleep 3 & wait' 2>/dev/null
wait
mkdir -p /root/.lab && touch /root/.lab/pids-limit-reached
exit 0
