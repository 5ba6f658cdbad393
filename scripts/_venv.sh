# shellcheck shell=bash
# Sourced by scripts/test and scripts/run: one project venv at <repo>/.venv.
# ensure_venv [EXTRAS]  -> creates .venv with python3 if missing and
# `pip install -e .[EXTRAS]` whenever pyproject.toml (or the extras) changed.
# Set STRATA_REINSTALL=1 to force the pip step.

ensure_venv() {
    local extras="${1:-}"
    local venv="$REPO/.venv"
    local spec="."
    [[ -n "$extras" ]] && spec=".[$extras]"
    if [[ ! -x "$venv/bin/python" ]]; then
        echo "[strata] creating $venv" >&2
        "${STRATA_BOOTSTRAP_PYTHON:-python3}" -m venv "$venv"
    fi
    local stamp="$venv/.strata-installed"
    local want
    want="$(sha256sum "$REPO/pyproject.toml" | cut -d' ' -f1) $extras"
    # An install with extras also satisfies a plain install of the same pyproject.
    if [[ "${STRATA_REINSTALL:-0}" != 1 && -f "$stamp" ]]; then
        local have; have="$(cat "$stamp")"
        if [[ "$have" == "$want" || ( -z "$extras" && "${have%% *}" == "${want%% *}" ) ]]; then
            return 0
        fi
    fi
    echo "[strata] pip install -e '$spec' into $venv" >&2
    (cd "$REPO" && "$venv/bin/python" -m pip install -q --disable-pip-version-check -e "$spec")
    echo "$want" >"$stamp"
}
