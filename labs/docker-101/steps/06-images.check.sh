# Passes when the image httpd is no longer listed and hello-world still is (only httpd removed).
hint() { case "${PLAYGROUND_LAB_LANGUAGE:-}" in en) echo "$1" ;; ko) echo "$2" ;; *) echo "$1" && echo "$2" ;; esac; }
if ! images=$(docker image ls --format '{{.Repository}}:{{.Tag}}' 2>/dev/null); then
  hint "The engine does not answer right now. Wait a few seconds and press Check again." \
    "지금은 엔진이 답하지 않습니다. 몇 초 뒤 다시 확인을 누르세요."
  exit 1
fi
if echo "$images" | grep -q -e '^httpd:' -e '/httpd:'; then
  users=$(docker ps -a --filter ancestor=httpd --format '{{.Names}}' | tr '\n' ' ')
  if [ -n "$users" ]; then
    hint "httpd is still listed, and containers use it: ${users% }. Remove them first (docker rm -f ${users% }), then: docker image rm httpd" \
      "httpd 가 아직 목록에 있고, 이 이미지를 쓰는 컨테이너가 있습니다: ${users% }. 먼저 docker rm -f ${users% } 로 지운 뒤 docker image rm httpd 를 실행하세요."
  else
    hint "httpd is still listed in docker image ls. Remove it: docker image rm httpd" \
      "httpd 가 아직 docker image ls 목록에 있습니다. docker image rm httpd 로 삭제하세요."
  fi
  exit 1
fi
if ! echo "$images" | grep -q '^hello-world:'; then
  hint "httpd is gone, but hello-world is gone too: this step removes httpd only. Bring hello-world back (this sandbox keeps a copy): docker load --input /usr/share/playground/images/hello-world.tar" \
    "httpd 는 사라졌지만 hello-world 도 사라졌습니다. 이 단계에서는 httpd 만 지웁니다. 샌드박스에 있는 사본으로 되살리세요: docker load --input /usr/share/playground/images/hello-world.tar"
  exit 1
fi
hint "httpd is removed; hello-world is still here." \
  "httpd 는 삭제되었고 hello-world 는 남아 있습니다."
