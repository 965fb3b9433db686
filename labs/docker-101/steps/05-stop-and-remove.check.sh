# Passes when no container is left, running or exited, once the web servers of steps 3 and 4 ran
# (their httpd image is here): an engine that never ran a container does not pass.
hint() { case "${PLAYGROUND_LAB_LANGUAGE:-}" in en) echo "$1" ;; ko) echo "$2" ;; *) echo "$1" && echo "$2" ;; esac; }
if ! names=$(docker ps -a --format '{{.Names}}' 2>/dev/null); then
  hint "The engine does not answer right now. Wait a few seconds and press Check again." \
    "지금은 엔진이 답하지 않습니다. 몇 초 뒤 다시 확인을 누르세요."
  exit 1
fi
if [ -n "$names" ]; then
  left=$(echo "$names" | tr '\n' ' ')
  hint "These containers are still there: ${left% }. Remove them all: docker rm -f \$(docker ps -aq)" \
    "아직 남은 컨테이너: ${left% }. 모두 삭제하세요: docker rm -f \$(docker ps -aq)"
  exit 1
fi
if ! docker image inspect httpd >/dev/null 2>&1; then
  hint "No container is left, but the httpd image is not here: run the web servers of steps 3 and 4 first." \
    "남은 컨테이너는 없지만 httpd 이미지도 없습니다. 3, 4 단계의 웹 서버부터 띄우세요."
  exit 1
fi
hint "No container is left: docker ps -a is empty." \
  "남은 컨테이너가 없습니다. docker ps -a 가 비어 있습니다."
