# Sourced by bench/run.sh and bench/s3.sh: restores only after ext4 has settled.
#
# ext4's inode allocator skips inodes freed in the last minutes (recently_deleted() in
# fs/ext4/ialloc.c: 30 s, plus 5 min while the inode table block is not yet written back) and
# scans past them, so creating 60,000 files soon after deleting 60,000 others costs many times more
# system time, for whichever program comes next (here a plain `cp -a` of the tree took 3 s, and
# 17-30 s within minutes of deleting earlier copies; still slow 100 s after, normal after 8 min).
# So the scripts keep the restore targets of a run until the run is over, and a restore starts
# only once SETTLE seconds have passed since either script last deleted restored trees (time kept
# in $WORK/.last-tree-delete, across runs).
#
# Needs: WORK, SETTLE (seconds) and a `log` function.
LAST_DELETE_FILE="$WORK/.last-tree-delete"

delete_trees() {  # PATH...: rm -rf, remembering the time if anything was there
    local p any=0
    for p in "$@"; do [[ -e "$p" ]] && any=1; done
    rm -rf "$@"
    if (( any )); then sync; date +%s > "$LAST_DELETE_FILE"; fi
}

settle() {
    local last=0 wait
    [[ -f "$LAST_DELETE_FILE" ]] && last=$(cat "$LAST_DELETE_FILE")
    wait=$(( last + SETTLE - $(date +%s) ))
    if (( wait > 0 )); then
        log "waiting ${wait}s before the restore: restored trees were deleted less than ${SETTLE}s ago (ext4, see bench/settle.sh)"
        sleep "$wait"
    fi
}
