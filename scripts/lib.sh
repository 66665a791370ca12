# Shell helpers shared by scripts/test.sh and scripts/bench.sh (sourced, not run).

# install_debs PKG...: installs Debian packages (as root, or with sudo), without starting a mail
# service: Postfix gets "No configuration" (only its tools, smtp-sink and smtp-source, are
# wanted), and no package's service is started while they install.
install_debs() {
  [ $# -gt 0 ] || return 0
  echo "installing: $*"
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  echo "postfix postfix/main_mailer_type select No configuration" | $sudo debconf-set-selections
  $sudo apt-get update -qq
  # No service is wanted from these packages (the tests start private Postfix and Dovecot
  # instances of their own): while they install, invoke-rc.d is told not to start any.
  local policy=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    policy=/usr/sbin/policy-rc.d
    printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null
    $sudo chmod 755 "$policy"
  fi
  $sudo apt-get install -y -qq --no-install-recommends "$@" >/dev/null
  [ -z "$policy" ] || $sudo rm -f "$policy"
}
