# Without ublk_drv loaded (the guest boots with only nvme), astrafs-ublk says what to do.
step "add without ublk_drv"
[ ! -e /dev/ublk-control ] || fail "ublk_drv is loaded: this suite must boot with --mods nvme"
if ublk add --volume v --size 1G /tmp/x 2>/tmp/err; then fail "add succeeded without ublk_drv"; fi
cat /tmp/err
grep -q "ublk_drv not loaded: run modprobe ublk_drv" /tmp/err || fail "unclear error"
[ ! -e /tmp/x ] || fail "add touched the member path"
if ublk recover 0 2>/tmp/err; then fail "recover succeeded"; fi
grep -q "modprobe ublk_drv" /tmp/err || { cat /tmp/err; fail "unclear recover error"; }
