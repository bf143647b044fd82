;; hostfuncs.wat: exercises every evp_v1 host function.
;;
;; evp_init logs "hostfuncs ready" (info) and returns 0, unless the config
;; contains "refuse": then it logs "refusing: config says refuse" (error)
;; and returns 7.
;;
;; evp_process logs "batch" (debug) once per call and, per record, adds 1
;; to the custom counter "records" (plus an invalid name and a negative
;; delta, both ignored). The verdict depends on the value:
;;   "now"     -> REJECT code 1 if now_ms() is a plausible time (2020..2100), else 0
;;   "badptr"  -> log and metric_add with out-of-range pointers, then
;;                REJECT code 100*lookup(bad table ptr) + lookup(bad out ptr)
;;   "notable" -> REJECT code lookup("nosuch", key)
;;   "small"   -> REJECT code lookup("geo", key) with a 1-byte buffer
;;   "many"    -> metric_add on 120 distinct names m000..m119, then KEEP
;;   otherwise -> r = lookup("geo", key): REPLACE the value with the
;;                looked-up one if r >= 0, else REJECT code r "lookup"
(module
  (import "evp_v1" "log" (func $log (param i32 i32 i32)))
  (import "evp_v1" "now_ms" (func $now (result i64)))
  (import "evp_v1" "metric_add" (func $metric (param i32 i32 i64)))
  (import "evp_v1" "lookup" (func $lookup (param i32 i32 i32 i32 i32 i32) (result i32)))
  (data (i32.const 16) "hostfuncs ready")
  (data (i32.const 48) "refusing: config says refuse")
  (data (i32.const 96) "refuse")
  (data (i32.const 112) "batch")
  (data (i32.const 128) "records")
  (data (i32.const 144) "bad name")
  (data (i32.const 160) "neg")
  (data (i32.const 176) "geo")
  (data (i32.const 192) "nosuch")
  (data (i32.const 208) "now")
  (data (i32.const 224) "badptr")
  (data (i32.const 240) "notable")
  (data (i32.const 256) "small")
  (data (i32.const 272) "lookup")
  (data (i32.const 288) "many")
  (func (export "evp_abi_v1"))
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

  (func (export "evp_init") (param $p i32) (param $n i32) (result i32)
    (if (call $contains (local.get $p) (local.get $n) (i32.const 96) (i32.const 6)) (then
      (call $log (i32.const 3) (i32.const 48) (i32.const 28))
      (return (i32.const 7))))
    (call $log (i32.const 1) (i32.const 16) (i32.const 15))
    (i32.const 0))

  (func (export "evp_process") (param $in i32) (param $len i32) (result i64)
    (call $log (i32.const 0) (i32.const 112) (i32.const 5))
    (call $process_all (local.get $in) (local.get $len)))

  (func $reject (param $code i32) (param $s i32) (param $n i32)
    (call $put8 (i32.const 2))
    (call $put32 (local.get $code))
    (call $putstr (local.get $s) (local.get $n)))

  (func $verdict (result i32)
    (local $r i32) (local $r2 i32) (local $t i64) (local $i i32)
    (call $metric (i32.const 128) (i32.const 7) (i64.const 1))
    (call $metric (i32.const 144) (i32.const 8) (i64.const 1))
    (call $metric (i32.const 160) (i32.const 3) (i64.const -5))
    (if (call $value_has (i32.const 208) (i32.const 3)) (then
      (local.set $t (call $now))
      (call $reject
        (i32.and (i64.gt_s (local.get $t) (i64.const 1577836800000))
                 (i64.lt_s (local.get $t) (i64.const 4102444800000)))
        (i32.const 208) (i32.const 3))
      (return (i32.const 0))))
    (if (call $value_has (i32.const 224) (i32.const 6)) (then
      (call $log (i32.const 2) (i32.const -16) (i32.const 100))
      (call $log (i32.const 2) (i32.const 16) (i32.const -1))
      (call $metric (i32.const -16) (i32.const 5) (i64.const 1))
      (local.set $r (call $lookup (i32.const -16) (i32.const 3) (global.get $kp) (global.get $kl) (i32.const 512) (i32.const 64)))
      (local.set $r2 (call $lookup (i32.const 176) (i32.const 3) (global.get $kp) (global.get $kl) (i32.const -16) (i32.const 64)))
      (call $reject (i32.add (i32.mul (local.get $r) (i32.const 100)) (local.get $r2)) (i32.const 224) (i32.const 6))
      (return (i32.const 0))))
    (if (call $value_has (i32.const 240) (i32.const 7)) (then
      (call $reject
        (call $lookup (i32.const 192) (i32.const 6) (global.get $kp) (global.get $kl) (i32.const 512) (i32.const 64))
        (i32.const 240) (i32.const 7))
      (return (i32.const 0))))
    (if (call $value_has (i32.const 256) (i32.const 5)) (then
      (call $reject
        (call $lookup (i32.const 176) (i32.const 3) (global.get $kp) (global.get $kl) (i32.const 512) (i32.const 1))
        (i32.const 256) (i32.const 5))
      (return (i32.const 0))))
    (if (call $value_has (i32.const 288) (i32.const 4)) (then
      (i32.store8 (i32.const 600) (i32.const 109)) ;; 'm'
      (block $done (loop $next
        (br_if $done (i32.ge_u (local.get $i) (i32.const 120)))
        (i32.store8 (i32.const 601) (i32.add (i32.const 48) (i32.div_u (local.get $i) (i32.const 100))))
        (i32.store8 (i32.const 602) (i32.add (i32.const 48) (i32.rem_u (i32.div_u (local.get $i) (i32.const 10)) (i32.const 10))))
        (i32.store8 (i32.const 603) (i32.add (i32.const 48) (i32.rem_u (local.get $i) (i32.const 10))))
        (call $metric (i32.const 600) (i32.const 4) (i64.const 1))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
      (call $put8 (i32.const 0))
      (return (i32.const 0))))
    (local.set $r (call $lookup (i32.const 176) (i32.const 3) (global.get $kp) (global.get $kl) (i32.const 512) (i32.const 64)))
    (if (i32.ge_s (local.get $r) (i32.const 0)) (then
      (call $put8 (i32.const 3))      ;; REPLACE
      (call $put32 (i32.const 1))     ;; one output
      (call $put8 (i32.const 4))      ;; fields: value
      (call $putstr (i32.const 512) (local.get $r))
      (return (i32.const 0))))
    (call $reject (local.get $r) (i32.const 272) (i32.const 6))
    (i32.const 0))
)
