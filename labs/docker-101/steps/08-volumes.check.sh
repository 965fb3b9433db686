# Passes when the volume notes holds a note, the container writer that wrote it is removed, and
# the container reader, mounting notes at /data, ended well having printed that note.
hint() { case "${PLAYGROUND_LAB_LANGUAGE:-}" in en) echo "$1" ;; ko) echo "$2" ;; *) echo "$1" && echo "$2" ;; esac; }
write="docker run --name writer -v notes:/data busybox sh -c 'echo \"Written by the first container\" > /data/note.txt'"
read="docker run --name reader -v notes:/data busybox cat /data/note.txt"
if ! dir=$(docker volume inspect --format '{{.Mountpoint}}' notes 2>/dev/null); then
  hint "There is no volume named notes yet (docker volume ls). Run: $write" \
    "이름이 notes 인 볼륨이 아직 없습니다(docker volume ls). 다음을 실행하세요: $write"
  exit 1
fi
if [ ! -s "$dir/note.txt" ]; then
  hint "The volume notes has no note.txt yet. Run: $write" \
    "notes 볼륨에 note.txt 가 아직 없습니다. 다음을 실행하세요: $write"
  exit 1
fi
if docker inspect writer >/dev/null 2>&1; then
  hint "The note is in the volume. Now remove the container that wrote it: docker rm writer" \
    "메모가 볼륨에 들어갔습니다. 이제 메모를 쓴 컨테이너를 삭제하세요: docker rm writer"
  exit 1
fi
if ! docker inspect reader >/dev/null 2>&1; then
  hint "writer is removed. Now read the note from a new container: $read" \
    "writer 는 삭제되었습니다. 이제 새 컨테이너에서 메모를 읽으세요: $read"
  exit 1
fi
if ! docker inspect --format '{{range .Mounts}}{{.Name}}:{{.Destination}} {{end}}' reader | grep -q 'notes:/data '; then
  hint "reader does not mount the volume notes at /data. Remove it (docker rm -f reader), then run: $read" \
    "reader 컨테이너가 notes 볼륨을 /data 에 연결하지 않았습니다. docker rm -f reader 로 지운 뒤 다음을 실행하세요: $read"
  exit 1
fi
if [ "$(docker inspect --format '{{.State.Status}} {{.State.ExitCode}}' reader)" != "exited 0" ]; then
  hint "reader has not ended well (see its STATUS in docker ps -a). Remove it (docker rm -f reader), then run: $read" \
    "reader 컨테이너가 정상 종료되지 않았습니다(docker ps -a 의 STATUS 를 보세요). docker rm -f reader 로 지운 뒤 다음을 실행하세요: $read"
  exit 1
fi
if [ "$(docker logs reader 2>&1)" != "$(cat "$dir/note.txt")" ]; then
  hint "reader did not print the note in the volume (docker logs reader). Remove it (docker rm reader), then run: $read" \
    "reader 컨테이너가 볼륨의 메모를 출력하지 않았습니다(docker logs reader). docker rm reader 로 지운 뒤 다음을 실행하세요: $read"
  exit 1
fi
hint "The note outlived writer: reader read it from the volume notes." \
  "메모가 writer 보다 오래 남았습니다. reader 가 notes 볼륨에서 읽었습니다."
