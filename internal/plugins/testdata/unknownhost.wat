;; unknownhost.wat: imports a function evp_v1 does not define.
(module
  (import "evp_v1" "frobnicate" (func))
  (memory (export "memory") 1)
  (func (export "evp_abi_v1"))
  (func (export "evp_alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "evp_init") (param i32 i32) (result i32) (i32.const 0))
  (func (export "evp_process") (param i32 i32) (result i64) (i64.const -1))
)
