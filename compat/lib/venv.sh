# The Python clients' venv (confluent-kafka, kafka-python, aiokafka from
# compat/python/requirements.txt), shared by compat/python and
# compat/security:
#
#   strom_venv VENV    creates VENV, or refreshes it when the requirements
#                      or the interpreter changed (installs Debian's
#                      python3-venv if python3 cannot make venvs); non-zero
#                      on failure.

STROM_VENV_REQUIREMENTS=$(cd "$(dirname "${BASH_SOURCE[0]}")/../python" && pwd)/requirements.txt

strom_venv() {
    local venv=$1 want stamp=$1/.strom-requirements
    want=$( (sha256sum <"$STROM_VENV_REQUIREMENTS"; python3 --version) | sha256sum | cut -d' ' -f1)
    if ! "$venv/bin/python" -c '' 2>/dev/null; then
        # missing, or its interpreter is gone (only ever remove a venv)
        [ -f "$venv/pyvenv.cfg" ] && rm -rf "$venv"
    fi
    if [ -x "$venv/bin/python" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
        return 0
    fi
    echo "== installing the Python clients into $venv"
    if [ ! -x "$venv/bin/python" ]; then
        mkdir -p "$(dirname "$venv")"
        if ! python3 -m venv "$venv" 2>/dev/null; then
            # Debian's python3 ships venv/ensurepip in a separate package.
            echo "== python3 -m venv failed; installing python3-venv"
            [ -f "$venv/pyvenv.cfg" ] && rm -rf "$venv"
            local sudo=""
            [ "$(id -u)" -eq 0 ] || sudo="sudo"
            $sudo apt-get update -q >/dev/null &&
                DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q python3-venv >/dev/null &&
                python3 -m venv "$venv" || return 1
        fi
    fi
    "$venv/bin/python" -m pip install -q --disable-pip-version-check -r "$STROM_VENV_REQUIREMENTS" || return 1
    echo "$want" >"$stamp"
}
