#!/usr/bin/env python3
"""Runs packaging/rst-detective@.service's command line as systemd would, where systemd is not PID 1.

Lab fixture for the Swift test suite (Python 3 standard library, util-linux's unshare, mount and setpriv;
run as root). systemd-analyze verify checks the unit file; this checks that what it starts works:

  service-run.py argv UNIT INSTANCE --etc-default DIR
      print the ExecStart command line as JSON: %i, %I and %% substituted, then ${VAR} (one word) and
      $VAR (split at spaces into words, none when empty) from Environment= and each EnvironmentFile=
      in order (a later one wins; a "-" path may be missing). EnvironmentFile paths under
      /etc/default/ are read from DIR instead.
  service-run.py exec UNIT INSTANCE --etc-default DIR --root DIR --binary PATH
      exec that command line (the binary at PATH instead of ExecStart's) in a private mount namespace
      set up as the unit's sandbox would be, in whatever network namespace this runs in:
        - / read-only (ProtectSystem=strict); /tmp and /var/tmp empty tmpfs (PrivateTmp=yes);
        - /var/lib is ROOT/var/lib (bind mount), so the test sees what the service writes;
        - /etc/passwd and /etc/group are copies to which systemd-sysusers added the package's user
          (packaging/rst-detective.sysusers), bind-mounted over the real ones (ROOT/etc);
        - StateDirectory=/StateDirectoryMode= made as systemd makes them (parents root 0755, the last
          one owned root:Group with that mode), and the ReadWritePaths= directory made writable by
          Group (README: "Running as a service");
        - the environment is systemd's: PATH plus the unit's variables; the working directory is /;
        - UMask=, then setpriv: group Group= with no supplementary groups, user root,
          CapabilityBoundingSet= as the bounding set (root's permitted and effective sets follow it at
          exec), NoNewPrivileges=.
      Every step is exec, so the caller's child is the capture itself: SIGTERM reaches it as systemd's
      KillSignal would.
"""

import argparse
import json
import os
import re
import shlex
import subprocess
import sys

SPECIFIER = re.compile(r"%(.)")
VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)")


def parse_unit(path):
    """[Service] settings as (key, value) pairs in order, continuation lines joined."""
    settings, section, pending = [], None, ""
    for raw in open(path, encoding="utf-8"):
        line = raw.rstrip("\n")
        if not pending and (not line.strip() or line.lstrip().startswith(("#", ";"))):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line, pending = pending + line, ""
        if line.startswith("["):
            section = line.strip()
            continue
        key, _, value = line.partition("=")
        settings.append((section, key.strip(), value.strip()))
    return [(k, v) for s, k, v in settings if s == "[Service]"]


def unescape(instance):
    """%I: systemd-escape's \\xNN undone, and "-" is "/" only for path escapes, which an interface is not."""
    return re.sub(r"\\x([0-9a-fA-F]{2})", lambda m: chr(int(m.group(1), 16)), instance)


def specifiers(value, instance):
    table = {"i": instance, "I": unescape(instance), "%": "%"}
    return SPECIFIER.sub(lambda m: table[m.group(1)], value)


def environment(settings, instance, etc_default):
    env = {}
    for key, value in settings:
        if key == "Environment":
            for word in shlex.split(specifiers(value, instance)):
                name, _, val = word.partition("=")
                env[name] = val
        elif key == "EnvironmentFile":
            path = specifiers(value, instance)
            optional = path.startswith("-")
            path = path.lstrip("-")
            if path.startswith("/etc/default/"):
                path = os.path.join(etc_default, path[len("/etc/default/"):])
            if not os.path.exists(path):
                if optional:
                    continue
                raise SystemExit("EnvironmentFile %s is missing" % path)
            for line in open(path, encoding="utf-8"):
                line = line.strip()
                if not line or line.startswith(("#", ";")):
                    continue
                name, _, val = line.partition("=")
                val = val.strip()
                if len(val) >= 2 and val[0] == val[-1] and val[0] in "'\"":
                    val = val[1:-1]
                env[name.strip()] = val
    return env


def command_line(settings, instance, env):
    """ExecStart's words, as systemd.service(5) "Command lines" expands them."""
    exec_start = [v for k, v in settings if k == "ExecStart"]
    if len(exec_start) != 1:
        raise SystemExit("want one ExecStart=, found %d" % len(exec_start))
    argv = []
    for word in shlex.split(specifiers(exec_start[0], instance)):
        whole = re.fullmatch(r"\$([A-Za-z_][A-Za-z0-9_]*)", word)
        if whole:  # $VAR alone: split at whitespace, no word at all when empty
            argv += env.get(whole.group(1), "").split()
        else:
            argv.append(VARIABLE.sub(lambda m: env.get(m.group(1) or m.group(2), ""), word))
    return argv


def setting(settings, key, default=None):
    values = [v for k, v in settings if k == key]
    return values[-1] if values else default


def sysusers_user(path):
    for line in open(path, encoding="utf-8"):
        words = shlex.split(line, comments=True)
        if words and words[0] == "u":
            return words[1]
    raise SystemExit("no user in %s" % path)


def run(*cmd):
    subprocess.run(cmd, check=True, stdin=subprocess.DEVNULL)


def cmd_exec(a, settings, argv, env):
    here = os.path.dirname(os.path.abspath(a.unit))
    sysusers = os.path.join(here, "rst-detective.sysusers")
    user = sysusers_user(sysusers)
    group = setting(settings, "Group")
    if group != user:
        raise SystemExit("Group=%s is not the sysusers user's group %s" % (group, user))
    # The package's user, made by systemd-sysusers itself in copies of this host's files.
    etc = os.path.join(a.root, "etc")
    os.makedirs(etc, exist_ok=True)
    for name in ("passwd", "group"):
        with open("/etc/" + name, encoding="utf-8") as f, open(os.path.join(etc, name), "w") as g:
            g.write(f.read())
    run("systemd-sysusers", "--root", a.root, sysusers)
    uid = None
    for line in open(os.path.join(etc, "passwd"), encoding="utf-8"):
        fields = line.split(":")
        if fields[0] == user:
            uid = int(fields[2])
    if uid is None:
        raise SystemExit("systemd-sysusers did not make %s" % user)
    var_lib = os.path.join(a.root, "var", "lib")
    os.makedirs(var_lib, exist_ok=True)
    # StateDirectory=: parents root 0755, the directory itself User:Group (root:rst-detective) with the mode.
    state = specifiers(setting(settings, "StateDirectory"), a.instance)
    mode = int(setting(settings, "StateDirectoryMode", "0755"), 8)
    parts = state.split("/")
    for n in range(1, len(parts) + 1):
        d = os.path.join(var_lib, *parts[:n])
        os.makedirs(d, exist_ok=True)
        if n < len(parts):
            os.chmod(d, 0o755)
    os.chown(d, 0, uid)
    os.chmod(d, mode)
    # ReadWritePaths=: the administrator lets the group write there (README, "Running as a service").
    for path in specifiers(setting(settings, "ReadWritePaths", ""), a.instance).split():
        path = path.lstrip("-")
        if not path.startswith("/var/lib/"):
            raise SystemExit("ReadWritePaths %s is not under /var/lib" % path)
        d = os.path.join(var_lib, path[len("/var/lib/"):])
        os.makedirs(d, exist_ok=True)
        os.chown(d, 0, uid)
        os.chmod(d, 0o775)
    # The sandbox, in this process's private mount namespace (unshare --mount --propagation private).
    run("mount", "--bind", os.path.join(etc, "passwd"), "/etc/passwd")
    run("mount", "--bind", os.path.join(etc, "group"), "/etc/group")
    run("mount", "--bind", var_lib, "/var/lib")
    run("mount", "-o", "remount,bind,ro", "/")
    # The binary may live under /tmp (a clone there), which PrivateTmp's empty tmpfs is about to hide: it is
    # kept open, across the execs, and run through its descriptor.
    binary = os.open(a.binary, os.O_RDONLY)
    os.set_inheritable(binary, True)
    for d in ("/tmp", "/var/tmp"):
        run("mount", "-t", "tmpfs", "-o", "mode=1777,nosuid,nodev", "tmpfs", d)
    caps = setting(settings, "CapabilityBoundingSet").split()
    bounding = "-all," + ",".join("+" + c.lower().removeprefix("cap_") for c in caps)
    setpriv = ["setpriv", "--regid", str(uid), "--clear-groups", "--bounding-set", bounding, "--inh-caps", "-all"]
    if setting(settings, "NoNewPrivileges") == "yes":
        setpriv.append("--no-new-privs")
    if setting(settings, "User", "root") != "root":
        raise SystemExit("User= is not root: -Z needs root")
    os.umask(int(setting(settings, "UMask", "0022"), 8))
    os.chdir("/")
    child_env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
    child_env.update(env)
    os.execvpe("setpriv", setpriv + ["--", "/proc/self/fd/%d" % binary] + argv[1:], child_env)


def main():
    # The Swift test runner's children inherit a mask that blocks SIGINT and SIGTERM; the capture must
    # get SIGTERM as it would from systemd.
    import signal
    signal.pthread_sigmask(signal.SIG_SETMASK, [])
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("command", choices=["argv", "exec"])
    p.add_argument("unit")
    p.add_argument("instance")
    p.add_argument("--etc-default", required=True)
    p.add_argument("--root")
    p.add_argument("--binary")
    p.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    a = p.parse_args()
    settings = parse_unit(a.unit)
    env = environment(settings, a.instance, a.etc_default)
    argv = command_line(settings, a.instance, env)
    if a.command == "argv":
        print(json.dumps(argv))
        return 0
    if not (a.root and a.binary):
        p.error("exec needs --root and --binary")
    if not a.inside:
        os.execvp("unshare", ["unshare", "--mount", "--propagation", "private", sys.executable,
                              os.path.abspath(__file__)] + sys.argv[1:] + ["--inside"])
    cmd_exec(a, settings, argv, env)


if __name__ == "__main__":
    sys.exit(main())
