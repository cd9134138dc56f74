#!/usr/bin/env bash
# The main job: install what is missing, build, then speak a sample text with
# the official Kokoro model when it is here, or say how to get it and show
# the engine working on the deterministic test weights instead. Any other
# failure is shown as kokoro-tts reported it, with a non-zero exit.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/scripts/build.sh"
tts="$root/build/kokoro-tts"
text="Hello! This is Kokoro, a text-to-speech model, running in plain C. It read this sentence on $(date +'%B %-d, %Y')."
log="$(mktemp "${TMPDIR:-/tmp}/kokoro-run.XXXXXX")"
trap 'rm -f "$log"' EXIT
status=0
echo "$text" | "$tts" - "$root/kokoro-sample.wav" --voice af_heart 2>"$log" || status=$?
if [ "$status" -eq 0 ]; then
    cat "$log"
    echo "Wrote $root/kokoro-sample.wav with the official model."
    exit 0
fi
# kokoro-tts prints one of these two messages when model or voices are not
# found; anything else (a damaged file, a full disk...) is a real failure
if ! grep -q -e 'the Kokoro model files were not found' -e 'no voices: give --voices' "$log"; then
    echo "kokoro-tts failed (exit $status):" >&2
    cat "$log" >&2
    exit "$status"
fi
cat "$log"
echo
echo "The official model files are not here, so no speech was made."
echo "  Get them with:  $tts --download     (kokoro-v1_0.pth and voices-v1.0.bin, ~350 MB,"
echo "  into \${XDG_DATA_HOME:-~/.local/share}/kokoro), or name them with --model and --voices."
echo
echo "Meanwhile, the engine on the deterministic test weights (their audio is noise, not speech):"
"$root/build/kokoro-bench" --cases "$root/tests/data/kokoro-golden.npz" --out /tmp/kokoro-out.npz --test-weights --no-noise --threads "$(nproc)"
echo "$text" | "$tts" - /tmp/kokoro-test-weights.wav --test-weights --voices "$root/tests/data/voices" --voice af_heart
