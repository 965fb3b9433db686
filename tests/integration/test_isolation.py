"""What a visitor sees from inside a sandbox: its own hostname, processes and files only."""

from __future__ import annotations

import os
import urllib.request
from pathlib import Path

from tests.stack import Stack, Terminal


async def shell(stack: Stack) -> tuple[dict, Terminal]:
    session = stack.start_session()
    terminal = await Terminal.open(stack.terminal_url(session))
    await terminal.expect("# ", timeout=20)
    return session, terminal


async def test_the_hostname_is_the_instance_name(stack: Stack) -> None:
    session, terminal = await shell(stack)
    assert (await terminal.run("hostname")).strip() == "node1"
    assert (await terminal.run("cat /etc/hostname")).strip() == "node1"
    await terminal.close()
    stack.end_session(session)


async def test_ps_shows_only_the_sandboxes_own_processes(stack: Stack) -> None:
    session, terminal = await shell(stack)
    lines = (await terminal.run("ps -o pid,args")).strip().splitlines()[1:]
    pids = [int(line.split()[0]) for line in lines]
    assert pids[0] == 1 and len(pids) <= 3, lines
    assert not any(word in line for word in ("playground.webserver", "daphne", "celery", "redis") for line in lines)
    await terminal.close()
    stack.end_session(session)


async def test_the_hosts_files_are_not_visible(stack: Stack, tmp_path: Path) -> None:
    marker = Path("/tmp") / f"host-marker-{os.getpid()}"
    marker.write_text("host secret")
    try:
        session, terminal = await shell(stack)
        assert "No such file" in await terminal.run(f"cat {marker} 2>&1")
        assert "No such file" in await terminal.run(f"ls {stack.data_dir} 2>&1")
        assert "No such file" in await terminal.run("ls /work /root/.pyenv 2>&1")
        assert "playground" not in await terminal.run("cat /etc/passwd")
        await terminal.close()
        stack.end_session(session)
    finally:
        marker.unlink()


async def test_a_web_server_started_inside_answers_the_host_on_the_sandboxs_address(stack: Stack) -> None:
    # The seminar's `httpd` exercise, and what port publishing will build on.
    session, terminal = await shell(stack)
    assert (await terminal.run("ls /sys/class/net")).split() == ["eth0", "lo"]
    address = (await terminal.run("ip -4 -o addr show eth0")).split()[3].split("/")[0]
    await terminal.run("mkdir -p /www && echo 'It works!' > /www/index.html && httpd -p 80 -h /www")
    with urllib.request.urlopen(f"http://{address}/", timeout=5) as response:
        assert response.read() == b"It works!\n"
    await terminal.close()
    stack.end_session(session)


async def test_writes_do_not_reach_the_image_or_other_sandboxes(stack: Stack) -> None:
    first_session, first = await shell(stack)
    await first.run("echo mine > /etc/motd; rm /bin/vi; mkdir /data && touch /data/x")
    assert (await first.run("cat /etc/motd")).strip() == "mine"
    second_session, second = await shell(stack)
    assert "No such file" in await second.run("cat /etc/motd 2>&1")
    assert "No such file" in await second.run("ls /data 2>&1")
    assert (await second.run("ls /bin/vi")).strip() == "/bin/vi"
    image = stack.data_dir / "images" / "busybox" / "layers" / "0"
    assert not (image / "etc/motd").exists()
    assert (image / "bin/vi").is_symlink()
    assert not (image / "data").exists()
    for terminal in (first, second):
        await terminal.close()
    stack.end_session(first_session)
    stack.end_session(second_session)


async def test_the_sandbox_sees_its_own_limits_with_the_images_overrides(stack: Stack) -> None:
    session, terminal = await shell(stack)
    # The stack sets PLAYGROUND_IMAGE_QUOTAS="busybox:disk=96M,pids=200" over the site defaults.
    assert session["limits"] == {"memory_bytes": 512 * 1024**2, "cpus": 1.0, "pids": 200, "disk_bytes": 96 * 1024**2}
    assert (await terminal.run("df -k / | tail -1")).split()[1] == str(96 * 1024)
    memory = (
        await terminal.run("cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/memory.max 2>/dev/null")
    ).split()
    pids = (await terminal.run("cat /sys/fs/cgroup/pids/pids.max /sys/fs/cgroup/pids.max 2>/dev/null")).split()
    assert memory
    assert int(memory[0]) == session["limits"]["memory_bytes"]
    assert pids
    assert int(pids[0]) == session["limits"]["pids"]
    await terminal.close()
    stack.end_session(session)


async def test_users_chown_and_su_work_inside_as_in_a_normal_container(stack: Stack) -> None:
    from sandbox.settings import load

    session, terminal = await shell(stack)
    # Debian's busybox has no adduser: add the user the way its tools would.
    await terminal.run(
        "echo 'alice:x:1000:1000::/home/alice:/bin/sh' >> /etc/passwd && "
        "echo 'alice:x:1000:' >> /etc/group && mkdir /home/alice && chown alice:alice /home/alice"
    )
    out = await terminal.run(
        "su alice -s /bin/sh -c 'id -un; echo hi > ~/note' && "
        "chown root:root /home/alice/note && stat -c '%u %g %U' /home/alice/note && "
        "chown 4242:4243 /home/alice/note && stat -c '%u %g' /home/alice/note"
    )
    assert out.split() == ["alice", "0", "0", "root", "4242", "4243"]
    uid = int((await terminal.run("id -u alice")).strip())
    upper = next((stack.data_dir / "agent" / "sandboxes").glob("*/layer/upper/home/alice"))
    base = upper.parent.parent.parent.stat().st_uid  # the sandbox's own range: its layer's owner
    assert base > load(stack.env).uid_base  # never the image store's range
    assert upper.stat().st_uid == base + uid  # alice's home, on the host: inside the mapped range
    assert (upper / "note").stat().st_uid == base + 4242
    await terminal.close()
    stack.end_session(session)
