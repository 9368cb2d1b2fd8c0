{
  "targets": [
    {
      "target_name": "flotilla_native",
      "sources": ["send-file.c"],
      "cflags": ["-std=c11", "-O2", "-Wall", "-Wextra"],
      "defines": ["NAPI_VERSION=8", "_GNU_SOURCE"],
      "conditions": [["OS!='linux'", { "type": "none", "sources": [] }]]
    }
  ]
}
