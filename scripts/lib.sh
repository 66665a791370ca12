# Shell helpers shared by scripts/test.sh and scripts/bench.sh (sourced, not run).

# install_debs PKG...: installs Debian packages (as root, or with sudo), without starting a mail
# service when the package is Postfix ("No configuration": only its tools, smtp-sink and
# smtp-source, are wanted).
install_debs() {
  [ $# -gt 0 ] || return 0
  echo "installing: $*"
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  echo "postfix postfix/main_mailer_type select No configuration" | $sudo debconf-set-selections
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}
