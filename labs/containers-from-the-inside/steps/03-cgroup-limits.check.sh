# Passes when /root/limits.txt holds the sandbox's memory limit in MiB and its pids limit,
# read here from cgroup v2 (/sys/fs/cgroup/memory.max) or v1 (/sys/fs/cgroup/memory/...).
hint() { case "${PLAYGROUND_LAB_LANGUAGE:-}" in en) echo "$1" ;; ko) echo "$2" ;; *) echo "$1" && echo "$2" ;; esac; }
file=/root/limits.txt
memory=$(cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null | head -n 1)
pids=$(cat /sys/fs/cgroup/pids.max /sys/fs/cgroup/pids/pids.max 2>/dev/null | head -n 1)
case "$memory" in
  max|'') want_memory=max ;;
  *) want_memory=$((memory / 1048576)) ;;
esac
if [ ! -s "$file" ]; then
  hint "There is no /root/limits.txt yet. Write two lines into it: memory=<MiB> and pids=<number>." \
    "/root/limits.txt 파일이 아직 없습니다. memory=<MiB> 와 pids=<개수> 두 줄을 쓰세요."
  exit 1
fi
got_memory=$(sed -n 's/^ *memory *= *\([0-9a-z]*\).*/\1/p' "$file" | head -n 1)
got_pids=$(sed -n 's/^ *pids *= *\([0-9a-z]*\).*/\1/p' "$file" | head -n 1)
if [ "$got_memory" != "$want_memory" ]; then
  hint "memory=${got_memory:-?} is not the sandbox's memory limit. Read it again and divide the bytes by 1048576." \
    "memory=${got_memory:-?} 는 메모리 제한과 다릅니다. 다시 읽고 바이트 수를 1048576 으로 나누세요."
  exit 1
fi
if [ "$got_pids" != "$pids" ]; then
  hint "pids=${got_pids:-?} is not the sandbox's pids limit. Read pids.max again." \
    "pids=${got_pids:-?} 는 프로세스 수 제한과 다릅니다. pids.max 를 다시 읽으세요."
  exit 1
fi
hint "Right: at most $want_memory MiB of memory and $pids processes." \
  "맞습니다. 메모리는 최대 $want_memory MiB, 프로세스는 최대 $pids 개입니다."
