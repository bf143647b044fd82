;; addheader.wat: REPLACE every record with one output that keeps topic, key
;; and value and sets the headers to the input's headers plus via=evproxy.
(module
  (data (i32.const 16) "via")
  (data (i32.const 32) "evproxy")
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
    (call $put8 (i32.const 3))                                   ;; REPLACE
    (call $put32 (i32.const 1))                                  ;; one output
    (call $put8 (i32.const 8))                                   ;; fields: headers
    (call $put32 (i32.add (global.get $hc) (i32.const 1)))       ;; header count
    (call $putbytes (global.get $hp) (i32.sub (global.get $he) (global.get $hp))) ;; the input's, as is
    (call $putstr (i32.const 16) (i32.const 3))                  ;; name "via"
    (call $putstr (i32.const 32) (i32.const 7))                  ;; value "evproxy" (str = nbytes here)
    (i32.const 0))
)
