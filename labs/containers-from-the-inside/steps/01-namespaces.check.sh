# Passes when /root/namespaces.txt lists this sandbox's own namespaces (the ones this check
# runs in, which are the reader's shell's: checks run inside the same sandbox).
hint() { case "${PLAYGROUND_LAB_LANGUAGE:-}" in en) echo "$1" ;; ko) echo "$2" ;; *) echo "$1" && echo "$2" ;; esac; }
file=/root/namespaces.txt
if [ ! -s "$file" ]; then
  hint "There is no /root/namespaces.txt yet. Run: ls -l /proc/self/ns > /root/namespaces.txt" \
    "/root/namespaces.txt 파일이 아직 없습니다. ls -l /proc/self/ns > /root/namespaces.txt 를 실행하세요."
  exit 1
fi
for ns in mnt uts ipc pid net user; do
  id=$(readlink /proc/self/ns/$ns)
  if ! grep -qF "$id" "$file"; then
    hint "/root/namespaces.txt does not list this sandbox's $ns namespace ($id). Run the command again here." \
      "/root/namespaces.txt 에 이 샌드박스의 $ns 네임스페이스($id)가 없습니다. 여기서 명령을 다시 실행하세요."
    exit 1
  fi
done
hint "Your file lists the sandbox's mnt, uts, ipc, pid, net and user namespaces." \
  "파일에 샌드박스의 mnt, uts, ipc, pid, net, user 네임스페이스가 모두 있습니다."
