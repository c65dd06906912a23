#!/usr/bin/env bash
# `fmps train --hosts=FILE` for real: a private sshd on 127.0.0.1 (its own host key and an
# authorized key made here), servers and workers started through it. Checks that
#   1. the job trains every row, and every server and worker logged in through sshd;
#   2. Ctrl-C on the launcher ends the remote roles too;
#   3. SIGKILL of the launcher ends every role, local and remote (no orphans).
# Usage: ssh_launch_test.sh FMPS_BINARY CRITEO_DIR. Exits 77 (skipped) when sshd is not installed,
# unless FMPS_REQUIRE_SSHD=1 (scripts/test.sh installs openssh-server and sets it).
set -euo pipefail
FMPS=$(realpath "$1")
DATA=$(realpath "$2")
SSHD=$(command -v sshd || echo /usr/sbin/sshd)
if [ ! -x "$SSHD" ]; then
  echo "sshd is not installed (apt-get install openssh-server)"
  [ "${FMPS_REQUIRE_SSHD:-0}" = 1 ] && exit 1
  exit 77
fi
T=$(mktemp -d /tmp/fmps-ssh.XXXXXX)
SSHD_PID=
LAUNCHER=
cleanup() {
  [ -n "$LAUNCHER" ] && kill -9 "$LAUNCHER" 2>/dev/null
  [ -n "$SSHD_PID" ] && kill "$SSHD_PID" 2>/dev/null
  pkill -9 -f "$T/fmps-remote" 2>/dev/null || true
  rm -rf "$T"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; for f in "$T"/*.err "$T"/sshd.log; do [ -f "$f" ] && { echo "--- $f"; tail -20 "$f"; }; done; exit 1; }

ssh-keygen -q -t ed25519 -N '' -f "$T/host_key"
ssh-keygen -q -t ed25519 -N '' -f "$T/id"
cp "$T/id.pub" "$T/authorized_keys"
chmod 600 "$T/authorized_keys"
mkdir -p /run/sshd 2>/dev/null || true
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$T/sshd_config" <<CONF
Port $PORT
ListenAddress 127.0.0.1
HostKey $T/host_key
AuthorizedKeysFile $T/authorized_keys
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PermitRootLogin prohibit-password
PidFile $T/sshd.pid
LogLevel INFO
CONF
"$SSHD" -D -E "$T/sshd.log" -f "$T/sshd_config" &
SSHD_PID=$!
for _ in $(seq 100); do
  (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null && break
  sleep 0.1
done
# The remote roles run through this link, so they can be found by their command line.
ln -s "$FMPS" "$T/fmps-remote"
printf '# test hosts\n127.0.0.1\n%s@127.0.0.1  # the same host, by user\n' "$(id -un)" > "$T/hosts"
SSH_OPTS="-p $PORT -i $T/id -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR"
remote_roles() { pgrep -f "$T/fmps-remote (server|worker)" | wc -l; }
train() {
  exec "$FMPS" train --hosts="$T/hosts" --ssh_options="$SSH_OPTS" --remote_fmps="$T/fmps-remote" \
    --data="$DATA/train.txt" --test="$DATA/test.txt" --format=criteo --num_servers=2 --num_workers=2 "$@"
}

# 0. A bad host file is named with its line; a non-loopback host needs --scheduler_host.
printf 'good-host\nbad host\n' > "$T/bad-hosts"
err=$("$FMPS" train --hosts="$T/bad-hosts" --data="$DATA/train.txt" 2>&1 || true)
grep -q "$T/bad-hosts:2" <<<"$err" || fail "bad host file not named with its line: $err"
printf '10.9.8.7\n' > "$T/far-hosts"
err=$("$FMPS" train --hosts="$T/far-hosts" --data="$DATA/train.txt" 2>&1 || true)
grep -q -- "--scheduler_host" <<<"$err" || fail "no hint about --scheduler_host: $err"

# 1. A whole job.
(train --epochs=1 > "$T/job.out" 2> "$T/job.err") || fail "job exited non-zero"
rows=$(tail -1 "$T/job.out" | python3 -c 'import json,sys; print(json.load(sys.stdin)["rows"])')
want=$(wc -l < "$DATA/train.txt")
[ "$rows" = "$want" ] || fail "trained $rows rows, want $want"
logins=$(grep -c "Accepted publickey" "$T/sshd.log" || true)
[ "$logins" -ge 4 ] || fail "$logins ssh logins, want 4 (2 servers + 2 workers)"
grep -q "over ssh on 2 hosts" "$T/job.err" || fail "launcher did not say it used ssh"
[ "$(remote_roles)" = 0 ] || fail "roles left running after the job"
echo "ok 1: $rows rows through $logins ssh logins"

# 2 and 3: a long job, stopped by SIGINT, then one killed with SIGKILL.
for sig in INT KILL; do
  train --epochs=100000 > "$T/long.out" 2> "$T/long-$sig.err" &
  LAUNCHER=$!
  for _ in $(seq 200); do [ "$(remote_roles)" = 4 ] && break; sleep 0.1; done
  [ "$(remote_roles)" = 4 ] || fail "SIG$sig: the 4 remote roles did not start"
  sleep 1
  kill -"$sig" "$LAUNCHER"
  wait "$LAUNCHER" 2>/dev/null || true
  LAUNCHER=
  for _ in $(seq 150); do [ "$(remote_roles)" = 0 ] && break; sleep 0.1; done
  [ "$(remote_roles)" = 0 ] || fail "SIG$sig: $(remote_roles) remote roles still running 15 s after the launcher ended"
  for _ in $(seq 50); do pgrep -f "$FMPS scheduler.*$DATA/train.txt" >/dev/null || break; sleep 0.1; done
  pgrep -f "$FMPS scheduler.*$DATA/train.txt" >/dev/null && fail "SIG$sig: the scheduler outlived the launcher"
  echo "ok: SIG$sig on the launcher ended every role"
done
echo PASS
