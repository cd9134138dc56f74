#!/usr/bin/env bash
# End-to-end memcheck: scripts/valgrind-e2e.sh [BUILD_DIR]
# kokoro-tts runs whole jobs under valgrind: reading text, Markdown, EPUB and
# PDF, the front end (espeak-ng), the engine's pipeline (workers, async
# writer), joins, every encoder, chapters, split output, captions, and the
# error paths (unknown voice, bad speed, invalid UTF-8, missing or truncated
# model; hostile books are test_limits, run under valgrind by valgrind.sh).
# The network itself is not run here: valgrind 3.19
# has no AVX-512 and one sentence takes it hours; the inputs are silence
# markers ([pause:Ns]) and punctuation, which flow through the same pieces,
# joiner and writers as speech. The network runs under ASan+UBSan instead.
# Each case must end with the expected exit status, no memcheck error and no
# definite, indirect or possible leak. One known, harmless uninitialised test
# inside espeak-ng 1.51 is suppressed (tests/valgrind/espeak-ng-1.51.supp says
# why); the summary line shows how often it was. Ends with "valgrind-e2e: N clean, M failed".
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dir="$(cd "${1:-$root/build}" && pwd)"
tts="$dir/kokoro-tts"
command -v valgrind >/dev/null || { echo "valgrind-e2e.sh: valgrind is not installed (scripts/deps.sh)" >&2; exit 2; }
[ -x "$tts" ] || { echo "valgrind-e2e.sh: $tts not built" >&2; exit 2; }
work="$dir/valgrind-e2e"
rm -rf "$work"
mkdir -p "$work"
cd "$work"
data="$root/tests/data"

# the test weights as one mmap-able file: loads in a second even under valgrind
"$tts" --test-weights --voices "$data/voices" --convert model.kokoro -q
printf '[pause:1s]\n\n[pause:0.5s] ... !\n' >pause.txt
printf '# …\n\n[pause:1s]\n\n# …\n\n[pause:0.5s]\n\n# —\n\n[pause:0.25s]\n' >book.md
printf 'caf\xc3\xa9 \xff\xfe\n' >bad-utf8.txt
head -c 100000 model.kokoro >truncated.kokoro

clean=0 failed=0
# run NAME WANT_STATUS ARGS...: kokoro-tts ARGS under memcheck
run() {
  local name="$1" want="$2"
  shift 2
  local log="$work/$name.log" start rc=0
  start=$(date +%s)
  OPENBLAS_NUM_THREADS=1 valgrind --tool=memcheck --leak-check=full --show-leak-kinds=definite,indirect,possible \
    --errors-for-leak-kinds=definite,indirect,possible --error-exitcode=99 --track-origins=yes \
    --suppressions="$root/tests/valgrind/espeak-ng-1.51.supp" \
    --log-file="$log" "$tts" "$@" >"$log.out" 2>&1 </dev/null || rc=$?
  local summary
  summary="$(grep -E "ERROR SUMMARY" "$log" | tail -n1 | sed 's/^==[0-9]*== //' || true)"
  if [ "$rc" -eq "$want" ] && grep -q "ERROR SUMMARY: 0 errors" "$log"; then
    clean=$((clean + 1))
    echo "valgrind-e2e $name: clean, exit $rc ($(($(date +%s) - start)) s) $summary"
  else
    failed=$((failed + 1))
    echo "valgrind-e2e $name: FAILED (exit $rc, expected $want) $summary; see $log and $log.out" >&2
    tail -n 5 "$log.out" >&2 || true
  fi
}

m=(--model model.kokoro --voice af_heart -q)
# every output format, single file
for f in wav mp3 flac opus m4a pcm; do run "txt-$f" 0 pause.txt "out.$f" "${m[@]}"; done
# the parallel pipeline and the writer thread; captions
run txt-parallel-async 0 pause.txt par.wav "${m[@]}" --parallel --max-workers 2 --threads 1 --async-io
run txt-captions 0 pause.txt cap.wav "${m[@]}" --captions cap.vtt
run txt-blend-speed 0 pause.txt blend.wav --model model.kokoro --voice 'af_heart:60,am_adam:40' --speed 1.5 -q
# books: an audiobook with chapters and metadata, a file per chapter, a file per chunk
# (then each chapter's chunks merged, as a second run)
run md-audiobook 0 book.md --audiobook book.m4b "${m[@]}" --no-intro --title Silence --author Nobody --year 2026
run md-chapters 0 book.md --chapters chapters "${m[@]}" --format mp3
run md-split 0 book.md --split-output split "${m[@]}"
run md-merge 0 book.md --split-output split "${m[@]}" --merge-chunks
# readers and the front end alone
run epub-list 0 "$data/corpus/epub/moby-dick.epub" --list-chapters "${m[@]}"
run epub-list-ja 0 "$data/corpus/epub/kusamakura-japanese-vertical-writing.epub" --list-chapters "${m[@]}"
run epub-list-a11y 0 "$data/corpus/epub/accessible_epub_3.epub" --list-chapters "${m[@]}"
run pdf-list 0 "$data/corpus/pdf/pdflatex-outline.pdf" --list-chapters "${m[@]}"
run pdf-list-columns 0 "$data/corpus/pdf/multicolumn.pdf" --list-chapters "${m[@]}"
run txt-phonemes-en 0 "$data/corpus/txt/moby-dick-chapters-1-5.txt" --print-phonemes "${m[@]}"
run txt-phonemes-ja 0 "$data/corpus/txt/kusamakura-ichi-ja.txt" --print-phonemes --lang ja "${m[@]}"
run txt-phonemes-hi 0 "$data/chunks/mixed.txt" --print-phonemes --lang hi "${m[@]}"
run epub-phonemes 0 "$data/corpus/epub/moby-dick.epub" --print-phonemes --select-chapters 2-4 "${m[@]}"
# errors: a message and a non-zero status, nothing left behind, nothing leaked
run err-voice 1 pause.txt e1.wav --model model.kokoro --voice xx_nobody -q
run err-speed 2 pause.txt e2.wav "${m[@]}" --speed 3
run err-utf8 1 bad-utf8.txt e3.wav "${m[@]}"
run err-model-missing 1 pause.txt e4.wav --model missing.kokoro --voice af_heart -q
run err-model-truncated 1 pause.txt e5.wav --model truncated.kokoro --voice af_heart -q
run err-input-missing 1 missing.txt e6.wav "${m[@]}"
for f in e1.wav e2.wav e3.wav e4.wav e5.wav e6.wav; do
  if [ -e "$f" ]; then
    echo "valgrind-e2e: $f was left behind by a failing run" >&2
    failed=$((failed + 1))
  fi
done
echo "valgrind-e2e: $clean clean, $failed failed"
[ $failed -eq 0 ]
