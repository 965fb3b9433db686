# Passes when /root/processes.txt is a `ps` listing taken here: PID 1 in it, and a sleep.
hint() { case "${PLAYGROUND_LAB_LANGUAGE:-}" in en) echo "$1" ;; ko) echo "$2" ;; *) echo "$1" && echo "$2" ;; esac; }
file=/root/processes.txt
if [ ! -s "$file" ]; then
  hint "There is no /root/processes.txt yet. Run: sleep 300 &   then: ps -o pid,args > /root/processes.txt" \
    "/root/processes.txt 파일이 아직 없습니다. sleep 300 & 을 실행한 뒤 ps -o pid,args > /root/processes.txt 를 실행하세요."
  exit 1
fi
if ! grep -Eq '^ *1 ' "$file"; then
  hint "/root/processes.txt has no process with PID 1. Save the output of: ps -o pid,args" \
    "/root/processes.txt 에 PID 1 프로세스가 없습니다. ps -o pid,args 의 출력을 저장하세요."
  exit 1
fi
if ! grep -q 'sleep' "$file"; then
  hint "/root/processes.txt shows no sleep. Start one with: sleep 300 &   then save the list again." \
    "/root/processes.txt 에 sleep 이 없습니다. sleep 300 & 으로 시작한 뒤 목록을 다시 저장하세요."
  exit 1
fi
hint "PID 1 is your shell, and your sleep is there: this is every process the sandbox can see." \
  "PID 1 은 여러분의 셸이고 sleep 도 보입니다. 샌드박스가 볼 수 있는 프로세스는 이것이 전부입니다."
