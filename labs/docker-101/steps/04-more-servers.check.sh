# Passes when apa03, apa04 and apa05 run httpd publishing port 80 on 8081, 8082 and 8083 and
# answer "It works!", and nginx01 runs nginx on 8084 and answers "Welcome to nginx!". Servers
# just started are asked for up to about 4 s in all.
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
# serves NAME PORT IMAGE TEXT: NAME runs IMAGE, publishes port 80 on PORT, and PORT answers TEXT.
serves() {
  run="docker run --name $1 -d -p $2:80 $3"
  if ! docker inspect "$1" >/dev/null 2>&1; then
    hint "There is no container named $1 yet. Run: $run" \
      "이름이 $1 인 컨테이너가 아직 없습니다. 다음을 실행하세요: $run"
    return 1
  fi
  image=$(image_of "$1")
  if [ "$image" != "$3" ]; then
    hint "$1 runs the image $image, not $3. Remove it (docker rm -f $1), then run: $run" \
      "$1 컨테이너는 $3 이미지가 아니라 $image 이미지를 실행합니다. docker rm -f $1 로 지운 뒤 다음을 실행하세요: $run"
    return 1
  fi
  if [ "$(docker inspect --format '{{.State.Running}}' "$1")" != true ]; then
    hint "$1 is not running (see its STATUS in docker ps -a). Start it: docker start $1" \
      "$1 컨테이너가 실행 중이 아닙니다(docker ps -a 의 STATUS 를 보세요). docker start $1 로 시작하세요."
    return 1
  fi
  if ! docker port "$1" 80/tcp 2>/dev/null | grep -q ":$2\$"; then
    hint "$1 does not publish its port 80 on $2 (docker port $1 shows what it publishes). Remove it (docker rm -f $1), then run: $run" \
      "$1 컨테이너가 포트 80 을 $2 번 포트로 공개하지 않습니다(docker port $1 로 확인). docker rm -f $1 로 지운 뒤 다음을 실행하세요: $run"
    return 1
  fi
  if ! body=$(page "$2"); then
    hint "Nothing answers on localhost:$2 yet. Wait a moment and press Check again; docker logs $1 shows what the server said." \
      "localhost:$2 에서 아직 답이 없습니다. 잠시 뒤 다시 확인을 누르세요. docker logs $1 로 서버의 로그를 볼 수 있습니다."
    return 1
  fi
  if ! echo "$body" | grep -q "$4"; then
    hint "localhost:$2 answers, but not with \"$4\". Try: curl localhost:$2" \
      "localhost:$2 에서 답이 오지만 \"$4\" 페이지가 아닙니다. curl localhost:$2 로 확인해 보세요."
    return 1
  fi
}
serves apa03 8081 httpd 'It works!' || exit 1
serves apa04 8082 httpd 'It works!' || exit 1
serves apa05 8083 httpd 'It works!' || exit 1
serves nginx01 8084 nginx 'Welcome to nginx!' || exit 1
hint "apa03, apa04 and apa05 answer \"It works!\" on 8081-8083, nginx01 \"Welcome to nginx!\" on 8084." \
  "apa03, apa04, apa05 가 8081-8083 에서 \"It works!\", nginx01 이 8084 에서 \"Welcome to nginx!\" 라고 답합니다."
