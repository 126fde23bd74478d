"""The flags of the container commands that run most often: ``create``, ``run``, ``start``, ``ps``,
``exec`` and ``rm``, declared once for the click commands and for the fast path (cli.flags)."""

from __future__ import annotations

from dockerbank.cli.flags import BOOL, CHOICE, INT, MULTI, Command, Flag
from dockerbank.cli.netflags import NETWORK_FLAGS

CREATE_FLAGS = [
    Flag("-i", "--interactive", kind=BOOL, help="Keep STDIN open even if not attached"),
    Flag("-t", "--tty", kind=BOOL, help="Allocate a pseudo-TTY"),
    Flag("--name", help="Assign a name to the container"),
    Flag("-e", "--env", kind=MULTI, help="Set environment variables"),
    Flag("--env-file", kind=MULTI, help="Read in a file of environment variables"),
    Flag("-v", "--volume", kind=MULTI, help="Bind mount a volume"),
    Flag("--mount", kind=MULTI, help="Attach a filesystem mount to the container"),
    Flag("--tmpfs", kind=MULTI, help="Mount a tmpfs directory"),
    Flag("--volumes-from", kind=MULTI, help="Mount volumes from the specified container(s)"),
    Flag("-w", "--workdir", help="Working directory inside the container"),
    Flag("-u", "--user", help="Username or UID (format: <name|uid>[:<group|gid>])"),
    Flag("--entrypoint", help="Overwrite the default ENTRYPOINT of the image"),
    Flag("-h", "--hostname", help="Container host name"),
    Flag("-l", "--label", kind=MULTI, help="Set meta data on a container"),
    Flag("--read-only", kind=BOOL, help="Mount the container's root filesystem as read only"),
    Flag("--cap-add", kind=MULTI, help="Add Linux capabilities"),
    Flag("--cap-drop", kind=MULTI, help="Drop Linux capabilities"),
    Flag("--privileged", kind=BOOL, help="Give extended privileges to this container"),
    Flag("--security-opt", kind=MULTI, help="Security Options"),
    Flag("--device", kind=MULTI, help="Add a host device to the container"),
    Flag("--init", kind=BOOL, help="Run an init inside the container"),
    Flag("--userns", help="User namespace: 'host' or 'auto[:size=N]' (own subordinate IDs)"),
    Flag("--restart", default="no", help="Restart policy to apply when a container exits"),
    Flag("--rm", dest="auto_remove", kind=BOOL, help="Automatically remove the container when it exits"),
    Flag("-m", "--memory", help="Memory limit"),
    Flag("--memory-swap", help="Swap limit equal to memory plus swap: '-1' for unlimited"),
    Flag("--cpus", help="Number of CPUs"),
    Flag("-c", "--cpu-shares", kind=INT, default=0, help="CPU shares (relative weight)"),
    Flag("--pids-limit", kind=INT, default=0, help="Tune container pids limit (-1 for unlimited)"),
    Flag("--blkio-weight", kind=INT, default=0, help="Block IO (relative weight), 10 to 1000"),
    Flag("--network", "--net", dest="network", default="", help="Connect a container to a network"),
    Flag("--stop-signal", help="Signal to stop the container"),
    Flag("--stop-timeout", kind=INT, help="Timeout (in seconds) to stop a container"),
    Flag("-a", "--attach", kind=MULTI, help="Attach to STDIN, STDOUT or STDERR"),
    Flag("--health-cmd", help="Command to run to check health"),
    Flag("--health-interval", help="Time between running the check (ms|s|m|h) (default 0s)"),
    Flag("--health-timeout", help="Maximum time to allow one check to run (ms|s|m|h) (default 0s)"),
    Flag("--health-retries", kind=INT, help="Consecutive failures needed to report unhealthy"),
    Flag("--health-start-period", help="Start period for the container to initialize before starting "
         "health-retries countdown (ms|s|m|h) (default 0s)"),
    Flag("--health-start-interval", help="Time between running the check during the start period "
         "(ms|s|m|h) (default 0s)"),
    Flag("--no-healthcheck", kind=BOOL, help="Disable any container-specified HEALTHCHECK"),
    Flag("--log-driver", help="Logging driver for the container (k8s-file, json-file, local, syslog, gelf, none)"),
    Flag("--log-opt", kind=MULTI, help="Log driver options"),
    Flag("--link", kind=MULTI, help="Add link to another container"),
    Flag("--pid", default="", help="PID namespace to use"),
    Flag("--uts", default="", help="UTS namespace to use"),
    Flag("--cgroupns", default="", help='Cgroup namespace to use (host|private)'),
    Flag("--group-add", kind=MULTI, help="Add additional groups to join"),
    Flag("--device-cgroup-rule", kind=MULTI, help="Add a rule to the cgroup allowed devices list"),
    Flag("--cpuset-cpus", default="", help="CPUs in which to allow execution (0-3, 0,1)"),
    Flag("--cpuset-mems", default="", help="MEMs in which to allow execution (0-3, 0,1)"),
    Flag("--mac-address", default="", help="Container MAC address (e.g., 92:d0:c6:0a:29:33)"),
    Flag("--isolation", default="", help="Container isolation technology"),
    Flag("--ipc", default="", help="IPC mode to use (private, shareable, container:<name|id>, host, none)"),
    Flag("--shm-size", default="", help="Size of /dev/shm"),
    Flag("--ulimit", kind=MULTI, help="Ulimit options"),
    Flag("--sysctl", kind=MULTI, help="Sysctl options"),
    Flag("--oom-score-adj", kind=INT, default=0, help="Tune host's OOM preferences (-1000 to 1000)"),
    Flag("--cpu-period", kind=INT, default=0, help="Limit CPU CFS (Completely Fair Scheduler) period"),
    Flag("--cpu-quota", kind=INT, default=0, help="Limit CPU CFS (Completely Fair Scheduler) quota"),
    Flag("--memory-reservation", default="", help="Memory soft limit"),
    Flag("--pull", dest="pull_policy", kind=CHOICE, default="missing", choices=("always", "missing", "never"),
         help='Pull image before running ("always"|"missing"|"never")'),
    Flag("-q", "--quiet", kind=BOOL, help="Suppress the pull output"),
    Flag("--pod", default="", help="Run container in an existing pod"),
    *NETWORK_FLAGS,
]

RUN_FLAGS = [
    *CREATE_FLAGS,
    Flag("-d", "--detach", kind=BOOL, help="Run container in background and print container ID"),
    Flag("--sig-proxy", kind=BOOL, default=True, off="--no-sig-proxy", help="Proxy received signals to the process"),
]

START_FLAGS = [
    Flag("-a", "--attach", kind=BOOL, help="Attach STDOUT/STDERR and forward signals"),
    Flag("-i", "--interactive", kind=BOOL, help="Attach container's STDIN"),
]

PS_FLAGS = [
    Flag("-a", "--all", dest="show_all", kind=BOOL, help="Show all containers (default shows just running)"),
    Flag("-q", "--quiet", kind=BOOL, help="Only display container IDs"),
    Flag("-s", "--size", kind=BOOL, help="Display total file sizes"),
    Flag("-n", "--last", kind=INT, default=-1, help="Show n last created containers (includes all states)"),
    Flag("-l", "--latest", kind=BOOL, help="Show the latest created container (includes all states)"),
    Flag("--no-trunc", kind=BOOL, help="Don't truncate output"),
    Flag("-f", "--filter", dest="filters", kind=MULTI, help="Filter output based on conditions provided"),
    Flag("--format", dest="fmt", help="Pretty-print containers using a Go template"),
    Flag("--pod", dest="show_pod", kind=BOOL, help="Print the ID and name of the pod the containers are in"),
]

EXEC_FLAGS = [
    Flag("-i", "--interactive", kind=BOOL, help="Keep STDIN open even if not attached"),
    Flag("-t", "--tty", kind=BOOL, help="Allocate a pseudo-TTY"),
    Flag("-d", "--detach", kind=BOOL, help="Detached mode: run command in the background"),
    Flag("-e", "--env", kind=MULTI, help="Set environment variables"),
    Flag("--env-file", kind=MULTI, help="Read in a file of environment variables"),
    Flag("-u", "--user", help="Username or UID (format: <name|uid>[:<group|gid>])"),
    Flag("-w", "--workdir", help="Working directory inside the container"),
    Flag("--privileged", kind=BOOL, help="Give extended privileges to the command"),
]

RM_FLAGS = [
    Flag("-f", "--force", kind=BOOL, help="Force the removal of a running container (uses SIGKILL)"),
    Flag("-v", "--volumes", kind=BOOL, help="Remove anonymous volumes associated with the container"),
    Flag("-l", "--link", kind=BOOL, hidden=True),
]

# the command lines the fast path takes (cli.fastpath); click's commands have the same shape
RUN = Command(RUN_FLAGS, positionals=("image",), rest="command", interspersed=False)
CREATE = Command(CREATE_FLAGS, positionals=("image",), rest="command", interspersed=False)
START = Command(START_FLAGS, rest="containers", rest_required=True)
PS = Command(PS_FLAGS)
EXEC = Command(EXEC_FLAGS, positionals=("container",), rest="command", rest_required=True, interspersed=False)
RM = Command(RM_FLAGS, rest="containers", rest_required=True)
CLEANUP = Command([], rest="containers")
