"""A Docker engine inside a sandbox of the ``docker`` image (its docker profile), driven through the
agent's ``run`` op as a lab check would: the engine starts with the sandbox, answers, runs the
offline hello-world, builds, publishes a port inside, and stays within the sandbox's quotas."""

from __future__ import annotations

import math
import os

import pytest

from sandbox.settings import load
from tests.dockerkit import log, run
from tests.stack import Stack

# Long and mostly waiting on sandboxes: run in 'make test''s second pytest, beside the rest.
pytestmark = [pytest.mark.root, pytest.mark.alongside]


async def test_the_engine_answers_with_overlay2_on_its_own_tmpfs(docker_image: Stack, docker_sandbox: str) -> None:
    out = await run(
        docker_image,
        docker_sandbox,
        "docker info --format '{{.Driver}} {{.CgroupDriver}}'; df -T /var/lib/docker | tail -1",
    )
    assert out["code"] == 0, out["output"]
    assert out["output"].startswith("overlay2 cgroupfs"), out["output"]
    assert " tmpfs " in out["output"]


async def test_free_nproc_and_docker_info_show_the_sandboxs_limits_not_the_hosts(
    docker_image: Stack, docker_sandbox: str
) -> None:
    # procps's free and docker info read lxcfs's /proc/meminfo; GNU nproc follows OMP_NUM_THREADS.
    out = await run(
        docker_image,
        docker_sandbox,
        "cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max; "
        "free -b | awk '/^Mem:/ {print $2}'; docker info --format '{{.MemTotal}}'; nproc",
    )
    assert out["code"] == 0, out["output"]
    limit, free_total, docker_total, processors = (int(word) for word in out["output"].split())
    assert free_total == docker_total == limit < os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    cpus = load(docker_image.env).quotas_for("docker", {}).cpus
    assert processors == math.ceil(cpus) != os.cpu_count(), out["output"]


async def test_docker_run_hello_world_works_offline(docker_image: Stack, docker_sandbox: str) -> None:
    out = await run(docker_image, docker_sandbox, "docker run --rm hello-world")
    assert out["code"] == 0, out["output"] + await log(docker_image, docker_sandbox)
    assert "Hello from Docker" in out["output"]


SEMINAR = """
set -e
mkdir -p /root/web && cd /root/web
cat > Dockerfile <<'END'
FROM busybox
RUN mkdir /www && echo hello-from-apa02 > /www/index.html
CMD ["httpd", "-f", "-p", "80", "-h", "/www"]
END
docker build --tag web:1 . >/dev/null
docker run --name apa02 -d -p 8080:80 web:1 >/dev/null
for i in $(seq 50); do curl -s localhost:8080 && break; sleep 0.1; done
docker ps --format '{{.Names}} {{.Status}}'
docker stop apa02 >/dev/null
docker rm apa02 >/dev/null
echo "left: $(docker ps -aq | wc -l)"
"""


async def test_the_seminars_steps_build_run_publish_stop_and_remove_a_web_server(
    docker_image: Stack, docker_sandbox: str
) -> None:
    out = await run(docker_image, docker_sandbox, SEMINAR, 120)
    assert out["code"] == 0, out["output"] + await log(docker_image, docker_sandbox)
    assert "hello-from-apa02" in out["output"]
    assert "apa02 Up" in out["output"]
    assert "left: 0" in out["output"]


async def test_containers_on_a_user_network_reach_each_other_by_name(docker_image: Stack, docker_sandbox: str) -> None:
    script = (
        "set -e; docker network create n1 >/dev/null; "
        "docker run -d --name one --network n1 busybox httpd -f -p 80 -h /etc >/dev/null; "
        "docker run --rm --network n1 busybox wget -qO- http://one/passwd | head -1"
    )
    out = await run(docker_image, docker_sandbox, script, 60)
    assert out["code"] == 0, out["output"] + await log(docker_image, docker_sandbox)
    assert out["output"].startswith("root:")


COMPOSE = """
set -e
mkdir -p /root/app && cd /root/app
cat > docker-compose.yml <<'END'
version: "3"
services:
  web:
    image: busybox
    command: httpd -f -p 80 -h /etc
    volumes:
      - data:/data
  client:
    image: busybox
    command: sh -c 'until wget -qO- http://web/hostname; do sleep 0.2; done; echo from-client > /data/note'
    volumes:
      - data:/data
    depends_on:
      - web
volumes:
  data:
END
docker-compose up -d 2>/dev/null
docker wait "$(docker-compose ps -q client)" >/dev/null
docker-compose logs --no-color client | tail -1
docker-compose exec -T web cat /data/note
docker-compose down --volumes 2>/dev/null
echo "left: $(docker ps -aq | wc -l) $(docker volume ls -q | wc -l)"
"""


async def test_docker_compose_starts_two_services_sharing_a_named_volume_and_takes_them_down(
    docker_image: Stack, docker_sandbox: str
) -> None:
    out = await run(docker_image, docker_sandbox, COMPOSE, 120)
    assert out["code"] == 0, out["output"] + await log(docker_image, docker_sandbox)
    assert "from-client" in out["output"]
    assert "left: 0 0" in out["output"]


async def test_a_container_filling_the_disk_gets_no_space_left_and_the_sandbox_lives_on(
    docker_image: Stack, docker_sandbox: str
) -> None:
    # With the docker image's own quotas (1 GiB of memory and of disk) the sandbox's storage leaves an
    # eighth of its memory to the processes: the writer gets ENOSPC before the sandbox's OOM killer
    # would take the shell and the engine.
    out = await run(
        docker_image,
        docker_sandbox,
        "docker run --rm busybox sh -c 'dd if=/dev/zero of=/fill bs=1M 2>&1 | head -1'; "
        "echo shell-ok; docker info --format 'engine-{{.ServerVersion}}'",
        120,
    )
    assert "No space left on device" in out["output"], out["output"] + await log(docker_image, docker_sandbox)
    assert "shell-ok" in out["output"] and "engine-20.10" in out["output"], out["output"]
