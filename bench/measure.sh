# Sourced by bench/prune-memory.sh and bench/scale.sh (needs WORK set).
#
# measure LABEL CMD...: runs CMD under /usr/bin/time -v (its output in WORK/LABEL.out, the
# report in WORK/LABEL.time); prints "LABEL max RSS <MiB> wall <s>" and appends
# "LABEL <MiB> <s>" to WORK/results.
measure() {
    local label=$1
    shift
    /usr/bin/time -v "$@" >"$WORK/$label.out" 2>"$WORK/$label.time"
    local kib secs
    kib=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$WORK/$label.time")
    secs=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$WORK/$label.time" |
        awk -F: '{ if (NF == 3) print $1 * 3600 + $2 * 60 + $3; else print $1 * 60 + $2 }')
    printf '%-28s max RSS %8.1f MiB   wall %7.2f s\n' "$label" "$(echo "$kib / 1024" | bc -l)" "$secs"
    echo "$label $(echo "$kib / 1024" | bc -l) $secs" >>"$WORK/results"
}
