# CMake toolchain for cross-building skipnative for aarch64 (Grace) with Debian's
# aarch64-linux-gnu cross compiler. SKIPNATIVE_ARM_SYSROOT (optional) is a folder
# holding Debian's arm64 Python (usr/include/python3.11, usr/include/aarch64-linux-gnu):
# its headers are searched after the cross compiler's own, so only what the
# toolchain lacks (Python's per-architecture pyconfig.h) comes from there.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)

# try_compile projects (Threads, compiler checks) see the same variables.
list(APPEND CMAKE_TRY_COMPILE_PLATFORM_VARIABLES SKIPNATIVE_ARM_SYSROOT)
if(NOT SKIPNATIVE_ARM_SYSROOT)
  set(SKIPNATIVE_ARM_SYSROOT "$ENV{SKIPNATIVE_ARM_SYSROOT}")
endif()
if(SKIPNATIVE_ARM_SYSROOT)
  set(CMAKE_CXX_FLAGS_INIT "-idirafter ${SKIPNATIVE_ARM_SYSROOT}/usr/include")
  set(CMAKE_CROSSCOMPILING_EMULATOR qemu-aarch64 -L ${SKIPNATIVE_ARM_SYSROOT})
else()
  set(CMAKE_CROSSCOMPILING_EMULATOR qemu-aarch64 -L /usr/aarch64-linux-gnu)
endif()

set(CMAKE_FIND_ROOT_PATH /usr/aarch64-linux-gnu ${SKIPNATIVE_ARM_SYSROOT})
# Programs (the build's tools) are the host's; libraries and headers the target's.
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE BOTH)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE BOTH)
