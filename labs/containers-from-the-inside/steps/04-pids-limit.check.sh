# Passes once the sandbox has reached its pids limit: pids.events counts refused forks, and
# pids.peak (where the kernel has it) shows the highest number of processes ever reached.
# The solve script leaves /root/.lab/pids-limit-reached, for kernels that count a refused fork
# only in the cgroup that forked (cgroup v1) and have no pids.peak.
hint() { case "${PLAYGROUND_LAB_LANGUAGE:-}" in en) echo "$1" ;; ko) echo "$2" ;; *) echo "$1" && echo "$2" ;; esac; }
dir=/sys/fs/cgroup/pids
[ -f "$dir/pids.max" ] || dir=/sys/fs/cgroup
max=$(cat "$dir/pids.max")
refused=$(sed -n 's/^max \([0-9]*\)/\1/p' "$dir/pids.events" 2>/dev/null)
peak=$(cat "$dir/pids.peak" 2>/dev/null)
if [ "${refused:-0}" -gt 0 ]; then
  hint "The limit of $max processes was reached: the kernel refused $refused fork(s)." \
    "프로세스 $max 개 제한에 닿았습니다. 커널이 fork 를 $refused 번 거절했습니다."
  exit 0
fi
if { [ -n "$peak" ] && [ "$max" != max ] && [ "$peak" -ge "$max" ]; } || [ -e /root/.lab/pids-limit-reached ]; then
  hint "The limit of $max processes was reached." \
    "프로세스 $max 개 제한에 닿았습니다."
  exit 0
fi
hint "The sandbox has not reached its limit of $max processes yet (highest so far: ${peak:-?}). Run the loop of this step." \
  "아직 프로세스 $max 개 제한에 닿지 않았습니다(지금까지 최대 ${peak:-?}). 이 단계의 반복문을 실행하세요."
exit 1
