{
  "targets": [
    {
      "target_name": "xsnet",
      "sources": ["xsnet.c"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter", "-std=gnu11"],
      "defines": ["NAPI_VERSION=8"]
    }
  ]
}
