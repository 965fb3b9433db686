# Passes when the reader wrote /hello.txt (into the writable layer) and deleted
# /etc/os-release (a file of the read-only image: only hidden, for this sandbox).
# The root's type (third field) is overlay; its source (first field) names the image.
hint() { case "${PLAYGROUND_LAB_LANGUAGE:-}" in en) echo "$1" ;; ko) echo "$2" ;; *) echo "$1" && echo "$2" ;; esac; }
if ! awk '$2 == "/" && $3 == "overlay" { found = 1 } END { exit !found }' /proc/mounts; then
  hint "The root filesystem is not an overlay here, so this step does not apply." \
    "이 샌드박스의 루트 파일 시스템은 overlay 가 아니어서 이 단계를 진행할 수 없습니다."
  exit 1
fi
if [ ! -s /hello.txt ]; then
  hint "There is no /hello.txt yet. Write one: echo hello > /hello.txt" \
    "/hello.txt 파일이 아직 없습니다. echo hello > /hello.txt 로 만드세요."
  exit 1
fi
if [ -e /etc/os-release ]; then
  hint "/etc/os-release is still there. Delete it: rm /etc/os-release" \
    "/etc/os-release 가 아직 있습니다. rm /etc/os-release 로 지우세요."
  exit 1
fi
hint "/hello.txt is in your writable layer, and /etc/os-release is hidden from you alone: the image is unchanged." \
  "/hello.txt 는 쓰기 가능한 레이어에 있고, /etc/os-release 는 여러분에게만 가려졌습니다. 이미지는 그대로입니다."
