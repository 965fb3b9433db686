# Passes once the sandbox has hit its memory limit: an OOM kill counted in memory.oom_control
# (cgroup v1) or memory.events (v2), or the peak usage at the limit (memory.max_usage_in_bytes
# or memory.peak; a kill inside a check's or solve's own sub-cgroup is counted there only).
# The solve script also leaves /root/.lab/memory-limit-reached.
hint() { case "${PLAYGROUND_LAB_LANGUAGE:-}" in en) echo "$1" ;; ko) echo "$2" ;; *) echo "$1" && echo "$2" ;; esac; }
if [ -f /sys/fs/cgroup/memory/memory.limit_in_bytes ]; then
  dir=/sys/fs/cgroup/memory
  kills=$(sed -n 's/^oom_kill \([0-9]*\)/\1/p' $dir/memory.oom_control)
  limit=$(cat $dir/memory.limit_in_bytes)
  peak=$(cat $dir/memory.max_usage_in_bytes)
else
  dir=/sys/fs/cgroup
  kills=$(sed -n 's/^oom_kill \([0-9]*\)/\1/p' $dir/memory.events 2>/dev/null)
  limit=$(cat $dir/memory.max 2>/dev/null)
  peak=$(cat $dir/memory.peak 2>/dev/null)
fi
if [ "${kills:-0}" -gt 0 ]; then
  hint "The out-of-memory killer has stopped $kills process(es) in this sandbox, and only here." \
    "OOM killer 가 이 샌드박스 안의 프로세스를 $kills 번 종료했습니다. 다른 곳에는 영향이 없습니다."
  exit 0
fi
if { [ -n "$peak" ] && [ "${limit:-max}" != max ] && [ "$peak" -ge "$limit" ]; } ||
   [ -e /root/.lab/memory-limit-reached ]; then
  hint "The sandbox's memory use reached its limit of $((limit / 1048576)) MiB." \
    "샌드박스의 메모리 사용량이 제한인 $((limit / 1048576)) MiB 에 닿았습니다."
  exit 0
fi
hint "Nothing has gone over the memory limit yet. Run the dd command of this step." \
  "아직 메모리 제한을 넘은 프로세스가 없습니다. 이 단계의 dd 명령을 실행하세요."
exit 1
