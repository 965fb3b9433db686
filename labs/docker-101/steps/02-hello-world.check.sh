# Passes when a container of the image hello-world has run and exited with status 0.
hint() { case "${PLAYGROUND_LAB_LANGUAGE:-}" in en) echo "$1" ;; ko) echo "$2" ;; *) echo "$1" && echo "$2" ;; esac; }
statuses=$(docker ps -a --filter ancestor=hello-world --format '{{.Names}} {{.Status}}' 2>/dev/null)
if [ -z "$statuses" ]; then
  hint "docker ps -a shows no hello-world container yet. Run: docker run hello-world" \
    "docker ps -a 에 hello-world 컨테이너가 아직 없습니다. docker run hello-world 를 실행하세요."
  exit 1
fi
done=$(echo "$statuses" | grep ' Exited (0)' | head -n 1)
if [ -z "$done" ]; then
  hint "The hello-world container has not ended well (docker ps -a: $(echo "$statuses" | head -n 1)). Run docker run hello-world again." \
    "hello-world 컨테이너가 정상 종료되지 않았습니다(docker ps -a: $(echo "$statuses" | head -n 1)). docker run hello-world 를 다시 실행하세요."
  exit 1
fi
hint "hello-world ran and exited: ${done%% *} in docker ps -a." \
  "hello-world 가 실행 후 종료되었습니다. docker ps -a 의 ${done%% *} 입니다."
