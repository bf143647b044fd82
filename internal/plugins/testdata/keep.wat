;; keep.wat: answers KEEP for every record without parsing them (the
;; cheapest possible evp_v1 plugin). Used by BenchmarkProcess and the
;; hot reload test (as the "old" version).
(module
  (memory (export "memory") 2)
  (func (export "evp_abi_v1"))

  ;; The input goes at 64 KiB; memory is grown to hold it plus an output
  ;; area of 2n+64 bytes after it (8-aligned). Returns 0 if memory cannot grow.
  (func (export "evp_alloc") (param $n i32) (result i32)
    (local $need i32)
    (local.set $need
      (i32.shr_u (i32.add (i32.mul (local.get $n) (i32.const 3)) (i32.const 131143)) (i32.const 16)))
    (if (i32.gt_u (local.get $need) (memory.size))
      (then (if (i32.eq (memory.grow (i32.sub (local.get $need) (memory.size))) (i32.const -1))
        (then (return (i32.const 0))))))
    (i32.const 65536))

  (func (export "evp_init") (param i32 i32) (result i32) (i32.const 0))

  ;; Output: u32 count, then count × action 0 (KEEP).
  (func (export "evp_process") (param $in i32) (param $len i32) (result i64)
    (local $count i32) (local $out i32)
    (local.set $count (i32.load (local.get $in)))
    (local.set $out (i32.and (i32.add (i32.add (local.get $in) (local.get $len)) (i32.const 7)) (i32.const -8)))
    (i32.store (local.get $out) (local.get $count))
    (memory.fill (i32.add (local.get $out) (i32.const 4)) (i32.const 0) (local.get $count))
    (i64.or
      (i64.shl (i64.extend_i32_u (local.get $out)) (i64.const 32))
      (i64.extend_i32_u (i32.add (local.get $count) (i32.const 4)))))
)
