# Passes when the container apa02 runs the image httpd, publishes its port 80 on 8080, and
# localhost:8080 answers "It works!" (asked for up to about 4 s: a server just started may not
# listen yet). A container of another image named apa02 (nginx on 8080) does not pass.
hint() { case "${PLAYGROUND_LAB_LANGUAGE:-}" in en) echo "$1" ;; ko) echo "$2" ;; *) echo "$1" && echo "$2" ;; esac; }
deadline=$(($(date +%s) + 4))
page() {
  until body=$(curl -fsS --max-time 1 "http://localhost:$1/" 2>/dev/null); do
    [ "$(date +%s)" -lt "$deadline" ] || return 1
    sleep 0.3
  done
  printf '%s\n' "$body"
}
image_of() {
  image=$(docker inspect --format '{{.Config.Image}}' "$1")
  image=${image#docker.io/}
  image=${image#library/}
  echo "${image%:latest}"
}
run="docker run --name apa02 -d -p 8080:80 httpd"
if ! docker inspect apa02 >/dev/null 2>&1; then
  hint "There is no container named apa02 yet. Run: $run" \
    "이름이 apa02 인 컨테이너가 아직 없습니다. 다음을 실행하세요: $run"
  exit 1
fi
image=$(image_of apa02)
if [ "$image" != httpd ]; then
  hint "apa02 runs the image $image, not httpd. Remove it (docker rm -f apa02), then run: $run" \
    "apa02 컨테이너는 httpd 이미지가 아니라 $image 이미지를 실행합니다. docker rm -f apa02 로 지운 뒤 다음을 실행하세요: $run"
  exit 1
fi
if [ "$(docker inspect --format '{{.State.Running}}' apa02)" != true ]; then
  hint "apa02 is not running (see its STATUS in docker ps -a). Start it: docker start apa02" \
    "apa02 컨테이너가 실행 중이 아닙니다(docker ps -a 의 STATUS 를 보세요). docker start apa02 로 시작하세요."
  exit 1
fi
if ! docker port apa02 80/tcp 2>/dev/null | grep -q ':8080$'; then
  hint "apa02 does not publish its port 80 on 8080 (docker port apa02 shows what it publishes). Remove it (docker rm -f apa02), then run: $run" \
    "apa02 컨테이너가 포트 80 을 8080 번 포트로 공개하지 않습니다(docker port apa02 로 확인). docker rm -f apa02 로 지운 뒤 다음을 실행하세요: $run"
  exit 1
fi
if ! body=$(page 8080); then
  hint "Nothing answers on localhost:8080 yet. Wait a moment and press Check again; docker logs apa02 shows what Apache said." \
    "localhost:8080 에서 아직 답이 없습니다. 잠시 뒤 다시 확인을 누르세요. docker logs apa02 로 아파치의 로그를 볼 수 있습니다."
  exit 1
fi
if ! echo "$body" | grep -q 'It works!'; then
  hint "localhost:8080 answers, but not with Apache's \"It works!\" page. Try: curl localhost:8080" \
    "localhost:8080 이 답하지만 아파치의 \"It works!\" 페이지가 아닙니다. curl localhost:8080 으로 확인해 보세요."
  exit 1
fi
hint "apa02 runs httpd on port 8080: It works!" \
  "apa02 컨테이너가 포트 8080 에서 httpd 를 실행합니다: It works!"
