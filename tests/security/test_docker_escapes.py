"""Escapes tried from a Docker engine's containers inside a docker-profile sandbox (issue 15, acceptance 3).

Root inside a docker-profile sandbox holds CAP_SYS_ADMIN and CAP_NET_ADMIN in its own user
namespace and runs dockerd; its containers are what a visitor controls best. Each attack runs
in INNER containers of the most privileged kinds a visitor can ask for, and from the sandbox's
root shell itself:

- ``privileged`` (``--privileged``) and ``cap-add-all`` (``--cap-add ALL``): refused by the kernel
  today (a sysfs more permissive than the sandbox's read-only one; capabilities the sandbox lacks).
  Each attack still tries them, so that the day they start, the attack runs in them too;
- ``strongest``: every capability the sandbox has, no seccomp, no AppArmor, the sandbox's pid and
  network namespaces (``--pid=host --net=host``) and its whole root at /host (``-v /:/host``);
- ``plain``: a default container, where the network matters (its own netns behind dockerd's bridge);
- ``sandbox``: the sandbox's root shell, without a container.

Each test names its class or CVE and the denial it expects, fails if the attack works, and where
cheap shows that the same step works where it is allowed (on the host, or on the sandbox's own
objects), so that a test that could not fail would be seen. Traffic goes only to the host's loopback,
the stack's bridge gateway and the test's own sandboxes.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
import socket
import subprocess
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sandbox import settings as host_settings
from sandbox.host import cgroups
from sandbox.network.namespaces import NetworkConfig, SandboxNetwork
from tests.dockerkit import agent, run
from tests.security.test_network_walls import host_listener
from tests.stack import Stack
from tests.waiting import eventually, eventually_async

# Long and mostly waiting on sandboxes: run in 'make test''s second pytest, beside the rest.
pytestmark = pytest.mark.alongside

STRONGEST = (
    "--cap-add SYS_ADMIN --cap-add NET_ADMIN --cap-add MKNOD --security-opt seccomp=unconfined "
    "--security-opt apparmor=unconfined --pid=host --net=host -v /:/host"
)
CONTAINERS = {
    "privileged": "--privileged --pid=host --net=host -v /:/host",
    "cap-add-all": "--cap-add ALL --pid=host --net=host -v /:/host",
    "strongest": STRONGEST,
}
# How the kernel refuses the first two today (through the inner runc): the sandbox's sysfs is read-only,
# and an inner runc cannot grant a capability the sandbox lacks.
REFUSALS = {
    "privileged": 'error mounting "sysfs"',
    "cap-add-all": "unable to apply caps: operation not permitted",
}
WHERE = ["sandbox", *CONTAINERS]
RAN = "ATTACK-RAN"


async def attack(stack: Stack, sandbox_id: str, where: str, script: str, timeout: float = 60) -> str | None:
    """Run the sh ``script`` as root in ``where`` (a key of CONTAINERS, "plain", or "sandbox"); its
    output, or None when the inner container was refused to start in the known way (see REFUSALS)."""
    if where == "sandbox":
        body = f"echo {RAN}\n{script}"
    else:
        options = CONTAINERS.get(where, "")
        body = (
            f"cat > /root/attack.sh <<'ATTACK'\necho {RAN}\n{script}\nATTACK\n"
            f"docker run --rm {options} -v /root/attack.sh:/attack.sh:ro busybox sh /attack.sh 2>&1"
        )
    out = await run(stack, sandbox_id, body, timeout)
    output = str(out["output"])
    if RAN in output:
        return output
    assert where in REFUSALS, f"the attack did not run in {where}: {output}"
    assert REFUSALS[where] in output, f"{where} was refused, but not as known: {output}"
    return None


async def sandbox_info(stack: Stack, sandbox_id: str) -> dict[str, object]:
    """The agent's description of the sandbox (a repeated create only describes it)."""
    reply = await agent(stack).request("create", id=sandbox_id, hostname="node1", image="docker")
    return dict(reply["sandbox"])


async def limit_files(stack: Stack, sandbox_id: str) -> dict[str, Path]:
    """The sandbox's own limit files on the host (its cgroup's memory, pids and CPU quota)."""
    runtime_id = str((await sandbox_info(stack, sandbox_id))["runtime_id"])
    found = {}
    for directory in cgroups.sandbox_dirs(stack.cgroup_parent, runtime_id):
        for name in ("memory.limit_in_bytes", "memory.memsw.limit_in_bytes", "pids.max", "cpu.cfs_quota_us"):
            if (directory / name).exists():
                found[name] = directory / name
    assert {"memory.limit_in_bytes", "pids.max", "cpu.cfs_quota_us"} <= set(found), found
    return found


def gateway(stack: Stack) -> str:
    return str(NetworkConfig.from_settings(host_settings.load(stack.env).network).gateway)


@pytest.mark.parametrize("where", WHERE)
async def test_no_host_sysctl_is_written_core_pattern_escape(
    docker_image: Stack, docker_sandbox: str, where: str
) -> None:
    # Class: writing host sysctls (kernel.core_pattern runs a program as host root on the next
    # crash: the classic container escape; vm.drop_caches and kernel.panic disturb the host).
    # Expected: EROFS through the read-only /proc/sys; after root remounts it read-write or mounts
    # a proc of its own, EACCES: the host's sysctl files belong to host root, not to the sandbox's
    # range. The control: the same remount lets it write its own netns's sysctl.
    host = Path("/proc/sys/kernel/core_pattern")
    before = host.read_text()
    script = """
for f in /proc/sys/kernel/core_pattern /proc/sys/vm/drop_caches; do
  echo 3 > $f && echo WROTE $f
done
mount -o remount,rw /proc/sys && echo REMOUNTED
mkdir -p /tmp/p && mount -t proc proc /tmp/p && echo MOUNTED
for f in /proc/sys/kernel/core_pattern /proc/sys/vm/drop_caches /proc/sys/kernel/panic \
         /tmp/p/sys/kernel/core_pattern /tmp/p/sys/vm/drop_caches; do
  echo '|/bin/sh -c pg-escape' > $f && echo WROTE $f
done
cat /proc/sys/net/ipv4/ip_local_port_range > /proc/sys/net/ipv4/ip_local_port_range && echo OWN-NETNS-WRITTEN
"""
    try:
        output = await attack(docker_image, docker_sandbox, where, script)
    finally:
        after = host.read_text()
        if after != before:
            host.write_text(before)  # put the host back before failing
    assert after == before, f"the host's core_pattern was changed from {where}: {after!r}"
    if output is None:
        return
    assert "WROTE" not in output, output
    assert "Read-only file system" in output, output
    assert "REMOUNTED" in output and "Permission denied" in output, output
    assert "OWN-NETNS-WRITTEN" in output, output  # the control: writes get through where they are its own


@pytest.mark.parametrize("where", WHERE)
async def test_no_host_sysfs_knob_is_written_uevent_helper_class(
    docker_image: Stack, docker_sandbox: str, where: str
) -> None:
    # Class: writing host kernel knobs in sysfs (/sys/kernel/uevent_helper runs a program as host
    # root on the next hotplug event: the privileged-container escape; the mm knobs change the
    # host's memory management). Expected: EROFS: the sandbox's /sys is read-only and locked so by
    # the host's mount namespace (a remount read-write and a new read-write sysfs are EPERM, the
    # refusal that stops --privileged); a read-only sysfs of its own changes nothing. Were it
    # writable, the knobs would still be host root's files (EACCES). The host's values are
    # compared (and put back before failing).
    knobs = [Path("/sys/kernel/mm/transparent_hugepage/enabled"), Path("/sys/kernel/mm/ksm/run")]
    knobs = [k for k in knobs if k.exists()]
    assert knobs, "no sysfs knob on this host to compare"
    before = {k: k.read_text() for k in knobs}
    script = """
mount -o remount,rw /sys && echo REMOUNTED
mkdir -p /tmp/s && mount -t sysfs sysfs /tmp/s && echo MOUNTED-RW
mount -t sysfs -o ro sysfs /tmp/s
for root in /sys /tmp/s /host/sys; do
  [ -e $root/kernel/uevent_helper ] && echo /pg-escape > $root/kernel/uevent_helper && echo WROTE $root uevent_helper
  [ -e $root/kernel/mm/ksm/run ] && echo 1 > $root/kernel/mm/ksm/run && echo WROTE $root ksm
  [ -e $root/kernel/mm/transparent_hugepage/enabled ] && echo never > $root/kernel/mm/transparent_hugepage/enabled \
    && echo WROTE $root thp
done
true
"""
    try:
        output = await attack(docker_image, docker_sandbox, where, script)
    finally:
        after = {k: k.read_text() for k in knobs}
        for knob, value in before.items():
            if after[knob] != value:  # put the host back before failing
                knob.write_text(value.split("[")[1].split("]")[0] if "[" in value else value)
    assert after == before, f"a host sysfs knob was changed from {where}: {after}"
    if output is None:
        return
    assert "WROTE" not in output and "REMOUNTED" not in output and "MOUNTED-RW" not in output, output
    assert "Read-only file system" in output, output


@pytest.mark.parametrize("where", WHERE)
async def test_no_cgroup_release_agent_is_written_cve_2022_0492(
    docker_image: Stack, docker_sandbox: str, where: str
) -> None:
    # CVE-2022-0492: mount a cgroup v1 hierarchy, set its release_agent and notify_on_release,
    # and the host runs the agent as host root. Expected: a v1 mount inside shows only the
    # sandbox's (or container's) own cgroup namespace root, which has no release_agent file; a
    # new named hierarchy is EPERM; the host's release_agent files (hierarchy roots) never show.
    hosts = {p: p.read_text() for p in Path("/sys/fs/cgroup").glob("*/release_agent")}
    assert hosts, "no cgroup v1 hierarchy on this host: nothing to compare"
    script = """
mkdir -p /tmp/c /tmp/n
for controller in memory rdma pids cpu; do
  mount -t cgroup -o $controller cgroup /tmp/c || continue
  echo MOUNTED $controller
  [ -e /tmp/c/release_agent ] && echo HAS-RELEASE-AGENT $controller
  echo /pg-escape > /tmp/c/release_agent && echo WROTE /tmp/c/release_agent
  echo 1 > /tmp/c/notify_on_release && echo NOTIFY-SET $controller
  umount /tmp/c
done
mount -t cgroup -o none,name=pgescape cgroup /tmp/n && echo MOUNTED-NEW-HIERARCHY
for f in /sys/fs/cgroup/*/release_agent /host/sys/fs/cgroup/*/release_agent; do
  [ -e $f ] && echo /pg-escape > $f && echo WROTE $f
done
true
"""
    output = await attack(docker_image, docker_sandbox, where, script)
    assert {p: p.read_text() for p in hosts} == hosts, "a host release_agent changed"
    if output is None:
        return
    assert "WROTE" not in output, output
    assert "MOUNTED-NEW-HIERARCHY" not in output, output
    assert "HAS-RELEASE-AGENT" not in output, output  # no hierarchy's root is visible
    assert "MOUNTED memory" in output, output  # the control: the v1 mount itself works, so each write was tried


@pytest.mark.parametrize("where", WHERE)
async def test_no_host_block_device_is_read(docker_image: Stack, docker_sandbox: str, where: str) -> None:
    # Class: reading the host's disk through a device node (/dev/vda, /dev/sda; CVE-2017-1002101-like
    # device exposure). Expected: no such node under /dev or /host/dev; mknod of a block device is
    # EPERM (device nodes cannot be made in a user namespace), and the devices cgroup would deny it
    # anyway. The control: the same read of a device it has (/dev/zero) counts 512 bytes.
    disks = [d.name for d in Path("/sys/block").iterdir() if (d / "device").exists()]
    assert disks, "no disk on this host to compare with"
    major, minor = (Path("/sys/block") / disks[0] / "dev").read_text().strip().split(":")
    script = f"""
for d in /dev/{disks[0]} /dev/sda /dev/vda /dev/mem /host/dev/{disks[0]} /host/dev/sda /host/dev/vda; do
  [ -e $d ] && echo PRESENT $d && head -c 512 $d | wc -c
done
mknod /tmp/disk b {major} {minor} && echo MADE-NODE
head -c 512 /tmp/disk
head -c 512 /tmp/disk 2>/dev/null | wc -c | sed 's/^/READ-BYTES /'
mknod /tmp/mem c 1 1 && echo MADE-MEM
head -c 512 /dev/zero | wc -c | sed 's/^/CONTROL-BYTES /'
true
"""
    output = await attack(docker_image, docker_sandbox, where, script)
    if output is None:
        return
    assert "PRESENT" not in output, output
    assert "MADE-NODE" not in output and "MADE-MEM" not in output, output
    assert "READ-BYTES 0" in output and "CONTROL-BYTES 512" in output, output


@pytest.mark.parametrize("where", ["plain", *WHERE])
async def test_no_host_port_answers_an_inner_container(docker_image: Stack, docker_sandbox: str, where: str) -> None:
    # Class: an inner container reaching services the host exposes (sshd, Redis, the web tier).
    # Expected: the host's loopback is not the sandbox's (its own netns), and the walls drop its
    # packets to the gateway (the to_host counter rises). The control: the host connects itself.
    gw = gateway(docker_image)
    walls = SandboxNetwork(NetworkConfig.from_settings(host_settings.load(docker_image.env).network))
    with host_listener("0.0.0.0") as (port, peers):
        with socket.create_connection((gw, port), timeout=2):
            pass
        eventually(lambda: peers, "the listener's record of the host's own connection")
        peers.clear()
        before = walls.counters()["to_host"]
        script = f"""
for address in {gw} 127.0.0.1; do
  busybox nc -w 2 $address {port} </dev/null && echo CONNECTED $address
  echo TRIED $address
done
true
"""
        output = await attack(docker_image, docker_sandbox, where, script)
        assert peers == [], f"the host's listener got connections from {where}: {peers}"
    if output is None:
        return
    assert "CONNECTED" not in output and "TRIED 127.0.0.1" in output, output
    assert walls.counters()["to_host"] > before  # the wall dropped the packets to the gateway


@contextlib.asynccontextmanager
async def plain_sandbox(stack: Stack) -> AsyncIterator[str]:
    """A second sandbox (the busybox image) serving its /etc over HTTP on port 8000 (httpd in the
    foreground of a run op, which ends with the sandbox); its address."""
    sandbox_id = secrets.token_hex(16)
    reply = await agent(stack).request("create", id=sandbox_id, hostname="neighbour", image="busybox")
    serving = asyncio.create_task(run(stack, sandbox_id, "httpd -f -p 8000 -h /etc", 300))
    try:
        yield str(reply["sandbox"]["address"])
    finally:
        await agent(stack).request("destroy", id=sandbox_id)
        with contextlib.suppress(Exception):
            await serving


def fetch(url: str) -> str:
    """The body at ``url``, or "" while nothing answers there."""
    try:
        with urllib.request.urlopen(url, timeout=3) as answer:
            return str(answer.read().decode())
    except OSError:
        return ""


@pytest.mark.parametrize("where", ["plain", *WHERE])
async def test_no_other_sandbox_answers_an_inner_container(
    docker_image: Stack, docker_sandbox: str, where: str
) -> None:
    # Class: lateral movement to another visitor's sandbox. Expected: the walls drop sandbox-to-
    # sandbox traffic on the bridge (no answer within nc's 2 s). The control: the host reaches it.
    async with plain_sandbox(docker_image) as address:
        url = f"http://{address}:8000/passwd"
        served = await eventually_async(lambda: asyncio.to_thread(fetch, url), "the neighbour serves its /etc", 20)
        assert served.startswith("root:")  # the host reaches it
        script = f"""
busybox nc -w 2 {address} 8000 </dev/null && echo CONNECTED
busybox wget -q -T 3 -O - {url} && echo FETCHED
echo TRIED
"""
        output = await attack(docker_image, docker_sandbox, where, script)
    if output is None:
        return
    assert "TRIED" in output, output
    assert "CONNECTED" not in output and "FETCHED" not in output and "root:" not in output, output


@pytest.mark.parametrize("where", WHERE)
async def test_no_nested_user_namespace_is_made(docker_image: Stack, docker_sandbox: str, where: str) -> None:
    # Class: nested user namespaces, the door to most unprivileged-userns kernel exploits (and to
    # the CVE-2022-0492 recipe "unshare -UrmC"). Expected: EPERM from seccomp (unshare, and clone
    # with CLONE_NEWUSER: perl's raw syscall 56 with SIGCHLD), and user.max_user_namespaces is 0
    # inside, set from the host, and EACCES to raise it even after /proc/sys is remounted read-write (it needs
    # CAP_SYS_RESOURCE, which the sandbox lacks). The controls: the host itself makes one; in the
    # sandbox, clone with CLONE_NEWNET alone works (swarm mode's dockerd needs it).
    subprocess.run(["unshare", "-U", "true"], check=True)
    root = "" if where == "sandbox" else "chroot /host "  # util-linux's unshare, from the sandbox's root
    script = f"""
echo MAX $(cat /proc/sys/user/max_user_namespaces)
{root}unshare -U true && echo NESTED-USERNS
{root}unshare -Ur -m -C true && echo NESTED-USERNS-CGROUPNS
busybox unshare -U true && echo NESTED-USERNS-BUSYBOX
{root}perl -e '$r = syscall(56, 0x10000011, 0, 0, 0, 0); $r or exit; print $r > 0 ? "NESTED-CLONE\n" : "clone: $!\n"'
{root}perl -e '$r = syscall(56, 0x40000011, 0, 0, 0, 0); $r or exit; print $r > 0 ? "NETNS-CLONE\n" : "netns: $!\n"'
mount -o remount,rw /proc/sys && echo REMOUNTED
echo 100 > /proc/sys/user/max_user_namespaces && echo RAISED
true
"""
    output = await attack(docker_image, docker_sandbox, where, script)
    if output is None:
        return
    assert "MAX 0" in output, output
    assert "NESTED" not in output and "RAISED" not in output, output
    assert "Operation not permitted" in output, output
    assert "clone: Operation not permitted" in output, output
    if where == "sandbox":
        assert "NETNS-CLONE" in output, output


async def test_no_nested_user_namespace_through_the_sandboxs_runc(docker_image: Stack, docker_sandbox: str) -> None:
    # Class: nested user namespaces by way of the container runtime (what dockerd --userns-remap,
    # which root inside may restart its engine with, asks of runc). Expected: runc's rootless spec
    # (a user namespace of its own) fails at "failed to unshare user namespace: Operation not
    # permitted". The control: the same bundle without its user namespace runs.
    script = """
set -e
mkdir -p /root/userns/rootfs && cd /root/userns
docker export $(docker create busybox) | tar -C rootfs -xf -
runc spec --rootless
sed -i 's/"sh"/"id"/; s/"terminal": true/"terminal": false/' config.json
set +e
runc --root /run/pg-userns run pg-userns 2>&1 && echo NESTED-USERNS-RAN
rm config.json && runc spec && sed -i 's/"sh"/"true"/; s/"terminal": true/"terminal": false/' config.json
runc --root /run/pg-userns run pg-plain && echo CONTROL-RAN
"""
    out = await run(docker_image, docker_sandbox, script, 60)
    assert "NESTED-USERNS-RAN" not in out["output"], out["output"]
    assert "failed to unshare user namespace: Operation not permitted" in out["output"], out["output"]
    assert "CONTROL-RAN" in out["output"], out["output"]


async def install_probe(stack: Stack, sandbox_id: str, probe: Path) -> str:
    """The probe at the top of the sandbox's writable layer, owned by its root; its path inside."""
    runtime_id = str((await sandbox_info(stack, sandbox_id))["runtime_id"])
    layer = stack.data_dir / "agent" / "sandboxes" / runtime_id / "layer"
    name = f".probe-{secrets.token_hex(4)}"
    shutil.copy(probe, layer / "upper" / name)
    owner = layer.stat().st_uid
    os.chown(layer / "upper" / name, owner, owner)
    (layer / "upper" / name).chmod(0o755)
    return f"/{name}"


@pytest.mark.parametrize("where", WHERE)
async def test_no_kernel_module_is_loaded(
    docker_image: Stack, docker_sandbox: str, probe_binary: Path, where: str
) -> None:
    # Class: loading kernel code (a module runs in ring 0: game over). Expected: init_module and
    # finit_module denied (seccomp's EPERM, and no CAP_SYS_MODULE in the init user namespace);
    # modprobe/insmod find no modules and get the same denial.
    path = await install_probe(docker_image, docker_sandbox, probe_binary)
    inside = path if where == "sandbox" else f"/host{path}"
    script = f"""
for call in init_module finit_module; do echo "$call $({inside} $call)"; done
busybox insmod /dev/null && echo INSMOD-LOADED
true
"""
    output = await attack(docker_image, docker_sandbox, where, script)
    if output is None:
        return
    assert "init_module DENIED" in output and "finit_module DENIED" in output, output
    assert "ALLOWED" not in output and "LOADED" not in output, output


@pytest.mark.parametrize("where", WHERE)
async def test_the_sandbox_cannot_raise_its_own_limits(docker_image: Stack, docker_sandbox: str, where: str) -> None:
    # Class: quota escape (a sandbox raising its memory, pids or CPU limit, or leaving its cgroup).
    # Expected: EACCES: the sandbox's cgroup directories are delegated to its root so dockerd can
    # make containers' cgroups below them, but their files stay host root's, and chmod/chown of
    # them is EPERM. A fresh cgroup v1 mount shows the same files (the cgroup namespace's root).
    # The control: root inside can write the limits of a cgroup it made below its own.
    files = await limit_files(docker_image, docker_sandbox)
    before = {name: path.read_text() for name, path in files.items()}
    script = """
mkdir -p /tmp/c
for root in /sys/fs/cgroup /host/sys/fs/cgroup; do
  for f in memory/memory.limit_in_bytes memory/memory.memsw.limit_in_bytes pids/pids.max cpu/cpu.cfs_quota_us; do
    [ -e $root/$f ] || continue
    echo -1 > $root/$f && echo RAISED $root/$f
    echo max > $root/$f && echo RAISED $root/$f
    chmod 666 $root/$f && echo CHMOD $root/$f
  done
done
for controller in memory pids cpu; do
  mount -t cgroup -o $controller cgroup /tmp/c || continue
  for f in memory.limit_in_bytes pids.max cpu.cfs_quota_us; do
    [ -e /tmp/c/$f ] && echo -1 > /tmp/c/$f && echo RAISED-MOUNTED $controller $f
  done
  case $controller in memory) own="memory.limit_in_bytes 100000000";; pids) own="pids.max 50";;
    cpu) own="cpu.cfs_quota_us 10000";; esac
  mkdir -p /tmp/c/pg-own && echo ${own#* } > /tmp/c/pg-own/${own% *} && echo OWN-CHILD-WRITTEN $controller
  rmdir /tmp/c/pg-own
  umount /tmp/c
done
true
"""
    output = await attack(docker_image, docker_sandbox, where, script)
    assert {name: path.read_text() for name, path in files.items()} == before, f"a limit changed from {where}"
    if output is None:
        return
    assert "RAISED" not in output and "CHMOD" not in output and "LEFT-CGROUP" not in output, output
    assert "Permission denied" in output, output
    assert "OWN-CHILD-WRITTEN memory" in output, output  # the control: its own child cgroup's limit
