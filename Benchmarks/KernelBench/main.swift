// Kernel micro-benchmark (release build): swift run -c release vlm-bench-kernels
print("kernel bench placeholder")
