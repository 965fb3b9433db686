"""The OCI configuration each sandbox runs with."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sandbox.runtime.bundle import SandboxSpec, build_config
from sandbox.runtime.execs import NOFILE_ANNOTATION, limits_prefix


def spec(**overrides: Any) -> SandboxSpec:
    values: dict[str, Any] = dict(
        sandbox_id="abc12345",
        hostname="node1",
        args=["/bin/sh", "-l"],
        env=["TERM=xterm"],
        cwd="/root",
        memory_bytes=256 * 1024**2,
        cpus=0.5,
        pids=100,
        cgroup_parent="pg",
    )
    values.update(overrides)
    return SandboxSpec(**values)


def test_the_sandbox_gets_its_own_namespaces() -> None:
    namespaces = {n["type"] for n in build_config(spec())["linux"]["namespaces"]}
    assert namespaces == {"user", "pid", "network", "ipc", "uts", "mount", "cgroup"}


def test_root_inside_maps_to_an_unprivileged_range_of_65536_ids() -> None:
    linux = build_config(spec(uid_base=2_000_000))["linux"]
    mapping = [{"containerID": 0, "hostID": 2_000_000, "size": 65536}]
    assert linux["uidMappings"] == mapping
    assert linux["gidMappings"] == mapping


def test_quotas_become_cgroup_limits_under_the_agents_parent() -> None:
    linux = build_config(spec())["linux"]
    assert linux["cgroupsPath"] == "/pg/abc12345"
    assert linux["resources"]["memory"] == {"limit": 256 * 1024**2, "swap": 256 * 1024**2}
    assert linux["resources"]["cpu"] == {"quota": 50_000, "period": 100_000}
    assert linux["resources"]["pids"] == {"limit": 100}
    assert linux["resources"]["devices"] == [{"allow": False, "access": "rwm"}]


def test_the_process_is_a_login_shell_on_a_terminal_without_new_privileges() -> None:
    process = build_config(spec())["process"]
    assert process["terminal"] is True
    assert process["args"] == ["/bin/sh", "-l"]
    assert process["noNewPrivileges"] is True
    assert "CAP_SYS_ADMIN" not in process["capabilities"]["bounding"]
    assert "HOSTNAME=node1" in process["env"]


def test_proc_and_sys_are_masked_like_docker() -> None:
    config = build_config(spec())
    assert "/proc/kcore" in config["linux"]["maskedPaths"]
    assert "/proc/sysrq-trigger" in config["linux"]["readonlyPaths"]
    sys_mount = next(m for m in config["mounts"] if m["destination"] == "/sys")
    assert sys_mount["type"] == "sysfs"  # runc mounts it: the netns belongs to the sandbox's user namespace
    assert "ro" in sys_mount["options"]


def test_extra_files_are_bind_mounted_without_exec() -> None:
    config = build_config(spec(extra_files={"/etc/hostname": Path("/x/hostname")}))
    mount = next(m for m in config["mounts"] if m["destination"] == "/etc/hostname")
    assert mount["source"] == "/x/hostname"
    assert "noexec" in mount["options"]
    assert config["hostname"] == "node1"


def test_every_sandbox_runs_under_the_seccomp_profile() -> None:
    seccomp = build_config(spec())["linux"]["seccomp"]
    assert seccomp["defaultAction"] == "SCMP_ACT_ERRNO"
    allowed = {name for rule in seccomp["syscalls"] if rule["action"] == "SCMP_ACT_ALLOW" for name in rule["names"]}
    assert not allowed & {"keyctl", "unshare", "setns", "mount", "bpf", "io_uring_setup"}


def mount_options(config: dict, destination: str) -> list[str]:
    return next(m for m in config["mounts"] if m["destination"] == destination)["options"]


def test_the_sandbox_gets_its_own_devpts_of_at_most_its_pty_count_that_anyone_inside_may_open() -> None:
    options = mount_options(build_config(spec(ptys=20)), "/dev/pts")
    assert "newinstance" in options
    assert "max=20" in options
    assert "ptmxmode=0666" in options


def test_the_sandboxs_dev_and_dev_shm_hold_a_bounded_number_of_files() -> None:
    config = build_config(spec())
    assert "nr_inodes=1024" in mount_options(config, "/dev")
    assert "nr_inodes=4096" in mount_options(config, "/dev/shm")


def test_open_files_are_limited_by_runc_running_under_prlimit_not_by_oci_rlimits() -> None:
    config = build_config(spec(nofile=2048))
    assert "rlimits" not in config["process"]  # runc would prlimit from outside the sandbox's user namespace
    assert config["annotations"][NOFILE_ANNOTATION] == "2048"
    assert limits_prefix(2048) == ("prlimit", "--nofile=2048", "--core=0", "--")


def test_the_user_and_network_namespaces_are_joined_by_path_when_given_and_the_rest_are_new() -> None:
    joined = build_config(spec(userns=Path("/p/userns"), netns=Path("/run/netns/pg-x")))["linux"]["namespaces"]
    assert {"type": "user", "path": "/p/userns"} in joined
    assert {"type": "network", "path": "/run/netns/pg-x"} in joined
    assert {n["type"] for n in joined if "path" not in n} == {"pid", "ipc", "uts", "mount", "cgroup"}
    fresh = build_config(spec())["linux"]["namespaces"]
    assert all("path" not in n for n in fresh)


def test_root_inside_has_net_admin_for_its_own_network_but_neither_net_raw_nor_sys_admin() -> None:
    capabilities = build_config(spec())["process"]["capabilities"]["bounding"]
    assert "CAP_NET_ADMIN" in capabilities
    assert "CAP_NET_RAW" not in capabilities
    assert "CAP_SYS_ADMIN" not in capabilities


def test_the_kernels_build_configuration_and_crash_dump_symbols_are_masked() -> None:
    masked = build_config(spec())["linux"]["maskedPaths"]
    assert "/proc/config.gz" in masked
    assert "/sys/kernel/vmcoreinfo" in masked


def test_the_writable_layer_holds_the_inodes_setting_or_fewer_when_memory_is_small() -> None:
    assert spec(inodes=65536, memory_bytes=512 * 1024**2).layer_inodes == 65536
    # 64 MiB: 16384 empty files (about 32 MiB of kernel memory) leave the rest to delete them with.
    assert spec(inodes=65536, memory_bytes=64 * 1024**2).layer_inodes == 16384


def test_the_docker_profile_gets_sys_admin_net_raw_a_writable_cgroupfs_and_its_data_in_the_layer() -> None:
    config = build_config(spec(profile="docker", docker_data=Path("/agent/sandboxes/abc/layer/docker")))
    capabilities = config["process"]["capabilities"]["bounding"]
    assert {"CAP_SYS_ADMIN", "CAP_NET_ADMIN", "CAP_NET_RAW"} <= set(capabilities)
    assert "ro" not in mount_options(config, "/sys/fs/cgroup")
    [data] = [m for m in config["mounts"] if m["destination"] == "/var/lib/docker"]
    assert (data["type"], data["source"]) == ("bind", "/agent/sandboxes/abc/layer/docker")
    assert "nosuid" in data["options"] and "noexec" not in data["options"]
    assert "mount" in {n for rule in config["linux"]["seccomp"]["syscalls"] for n in rule["names"]}
    assert config["process"]["noNewPrivileges"] is True
    assert "/proc/sys" in config["linux"]["readonlyPaths"]


def test_storage_is_the_disk_quota_but_leaves_memory_to_the_processes() -> None:
    assert spec(memory_bytes=512 * 1024**2, disk_bytes=256 * 1024**2).storage_bytes == 256 * 1024**2
    # A disk as large as the memory: an eighth of it (at least 64 MiB) stays for the processes.
    assert spec(memory_bytes=1024**3, disk_bytes=1024**3).storage_bytes == 896 * 1024**2
    assert spec(memory_bytes=256 * 1024**2, disk_bytes=1024**3).storage_bytes == 192 * 1024**2


def test_other_images_keep_the_default_policy() -> None:
    config = build_config(spec())
    assert "CAP_SYS_ADMIN" not in config["process"]["capabilities"]["bounding"]
    assert "ro" in mount_options(config, "/sys/fs/cgroup")
    assert all(m["destination"] != "/var/lib/docker" for m in config["mounts"])


def test_omp_num_threads_is_the_cpu_quota_rounded_up_unless_the_image_sets_it() -> None:
    assert "OMP_NUM_THREADS=1" in build_config(spec(cpus=0.5))["process"]["env"]
    assert "OMP_NUM_THREADS=3" in build_config(spec(cpus=2.5))["process"]["env"]
    env = build_config(spec(env=["TERM=xterm", "OMP_NUM_THREADS=8"]))["process"]["env"]
    assert [item for item in env if item.startswith("OMP_NUM_THREADS=")] == ["OMP_NUM_THREADS=8"]
