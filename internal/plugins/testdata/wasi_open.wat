;; wasi_open.wat: tries to reach the host file system through WASI and
;; REJECTs every record with code e1 | e2<<8 | e3<<16 | e4<<24 where
;;   e1 = path_open(fd 3, "/etc/passwd")   e2 = path_open(fd 3, "etc/passwd")
;;   e3 = fd_prestat_get(fd 3)              e4 = fd_write(stdout, "/etc/passwd")
;; With no preopened directories e1..e3 are EBADF (8); e4 is 0 (stdout is
;; discarded, not an error).
(module
  (import "wasi_snapshot_preview1" "path_open"
    (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_prestat_get" (func $prestat (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (data (i32.const 16) "/etc/passwd")
  (data (i32.const 32) "etc/passwd")
  (data (i32.const 48) "errno")
  (func (export "evp_abi_v1"))
  (func (export "evp_init") (param i32 i32) (result i32) (i32.const 0))
  (memory (export "memory") 2)

  ;; evp_alloc: the input goes at 64 KiB; memory is grown to hold it plus an
  ;; output area of 2n+64 bytes after it (8-aligned). Returns 0 if memory
  ;; cannot grow.
  (func (export "evp_alloc") (param $n i32) (result i32)
    (local $need i32)
    (local.set $need
      (i32.shr_u (i32.add (i32.mul (local.get $n) (i32.const 3)) (i32.const 131143)) (i32.const 16)))
    (if (i32.gt_u (local.get $need) (memory.size))
      (then (if (i32.eq (memory.grow (i32.sub (local.get $need) (memory.size))) (i32.const -1))
        (then (return (i32.const 0))))))
    (i32.const 65536))

  ;; Output writer: $w is the cursor.
  (global $w (mut i32) (i32.const 0))
  (func $put8 (param $v i32)
    (i32.store8 (global.get $w) (local.get $v))
    (global.set $w (i32.add (global.get $w) (i32.const 1))))
  (func $put32 (param $v i32)
    (i32.store (global.get $w) (local.get $v))
    (global.set $w (i32.add (global.get $w) (i32.const 4))))
  (func $putbytes (param $p i32) (param $n i32)
    (memory.copy (global.get $w) (local.get $p) (local.get $n))
    (global.set $w (i32.add (global.get $w) (local.get $n))))
  ;; str: u32 len + bytes
  (func $putstr (param $p i32) (param $n i32)
    (call $put32 (local.get $n))
    (call $putbytes (local.get $p) (local.get $n)))

  ;; Record parser: $parse reads the record at p, sets the globals below and
  ;; returns the address after it.
  (global $kp (mut i32) (i32.const 0)) (global $kl (mut i32) (i32.const 0)) ;; key (len -1 = null)
  (global $vp (mut i32) (i32.const 0)) (global $vl (mut i32) (i32.const 0)) ;; value
  (global $hc (mut i32) (i32.const 0))                                      ;; header count
  (global $hp (mut i32) (i32.const 0)) (global $he (mut i32) (i32.const 0)) ;; raw headers [hp, he)
  (func $skipnb (param $p i32) (result i32)
    (local $n i32)
    (local.set $n (i32.load (local.get $p)))
    (i32.add (i32.add (local.get $p) (i32.const 4))
      (select (local.get $n) (i32.const 0) (i32.gt_s (local.get $n) (i32.const 0)))))
  (func $parse (param $p i32) (result i32)
    (local $i i32)
    (local.set $p (i32.add (i32.add (local.get $p) (i32.const 4)) (i32.load (local.get $p)))) ;; topic
    (local.set $p (i32.add (local.get $p) (i32.const 12)))                                    ;; partition, timestamp
    (global.set $kl (i32.load (local.get $p)))
    (global.set $kp (i32.add (local.get $p) (i32.const 4)))
    (local.set $p (call $skipnb (local.get $p)))
    (global.set $vl (i32.load (local.get $p)))
    (global.set $vp (i32.add (local.get $p) (i32.const 4)))
    (local.set $p (call $skipnb (local.get $p)))
    (global.set $hc (i32.load (local.get $p)))
    (local.set $p (i32.add (local.get $p) (i32.const 4)))
    (global.set $hp (local.get $p))
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $i) (global.get $hc)))
      (local.set $p (i32.add (i32.add (local.get $p) (i32.const 4)) (i32.load (local.get $p)))) ;; name
      (local.set $p (call $skipnb (local.get $p)))                                             ;; value
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $next)))
    (global.set $he (local.get $p))
    (local.get $p))

  ;; $contains: 1 if [p, p+n) contains [s, s+m) (n = -1, null, never does).
  (func $contains (param $p i32) (param $n i32) (param $s i32) (param $m i32) (result i32)
    (local $i i32) (local $j i32)
    (if (i32.lt_s (local.get $n) (local.get $m)) (then (return (i32.const 0))))
    (block $no (loop $outer
      (br_if $no (i32.gt_s (local.get $i) (i32.sub (local.get $n) (local.get $m))))
      (local.set $j (i32.const 0))
      (block $mismatch (loop $inner
        (if (i32.ge_u (local.get $j) (local.get $m)) (then (return (i32.const 1))))
        (br_if $mismatch
          (i32.ne (i32.load8_u (i32.add (local.get $p) (i32.add (local.get $i) (local.get $j))))
                  (i32.load8_u (i32.add (local.get $s) (local.get $j)))))
        (local.set $j (i32.add (local.get $j) (i32.const 1)))
        (br $inner)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $outer)))
    (i32.const 0))
  (func $value_has (param $s i32) (param $m i32) (result i32)
    (call $contains (global.get $vp) (global.get $vl) (local.get $s) (local.get $m)))

  ;; $process_all: walks the batch at in, writes u32 count, calls $verdict
  ;; per record (after $parse), and returns (out << 32 | out_len), or -1 if
  ;; $verdict returned non-zero.
  (func $process_all (param $in i32) (param $len i32) (result i64)
    (local $count i32) (local $i i32) (local $p i32) (local $out i32)
    (local.set $count (i32.load (local.get $in)))
    (local.set $p (i32.add (i32.add (local.get $in) (i32.const 8)) (i32.load offset=4 (local.get $in))))
    (local.set $out (i32.and (i32.add (i32.add (local.get $in) (local.get $len)) (i32.const 7)) (i32.const -8)))
    (global.set $w (local.get $out))
    (call $put32 (local.get $count))
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $i) (local.get $count)))
      (local.set $p (call $parse (local.get $p)))
      (if (call $verdict) (then (return (i64.const -1))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $next)))
    (i64.or
      (i64.shl (i64.extend_i32_u (local.get $out)) (i64.const 32))
      (i64.extend_i32_u (i32.sub (global.get $w) (local.get $out)))))

  (func (export "evp_process") (param $in i32) (param $len i32) (result i64)
    (call $process_all (local.get $in) (local.get $len)))

  (func $verdict (result i32)
    (local $e1 i32) (local $e2 i32) (local $e3 i32) (local $e4 i32)
    (local.set $e1 (call $path_open (i32.const 3) (i32.const 1) (i32.const 16) (i32.const 11)
      (i32.const 0) (i64.const -1) (i64.const -1) (i32.const 0) (i32.const 256)))
    (local.set $e2 (call $path_open (i32.const 3) (i32.const 1) (i32.const 32) (i32.const 10)
      (i32.const 0) (i64.const -1) (i64.const -1) (i32.const 0) (i32.const 256)))
    (local.set $e3 (call $prestat (i32.const 3) (i32.const 264)))
    (i32.store (i32.const 280) (i32.const 16))
    (i32.store (i32.const 284) (i32.const 11))
    (local.set $e4 (call $fd_write (i32.const 1) (i32.const 280) (i32.const 1) (i32.const 288)))
    (call $put8 (i32.const 2))
    (call $put32 (i32.or (i32.or (local.get $e1) (i32.shl (local.get $e2) (i32.const 8)))
                         (i32.or (i32.shl (local.get $e3) (i32.const 16)) (i32.shl (local.get $e4) (i32.const 24)))))
    (call $putstr (i32.const 48) (i32.const 5))
    (i32.const 0))
)
