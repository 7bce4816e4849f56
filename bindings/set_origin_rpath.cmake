# SPDX-License-Identifier: Apache-2.0
# cmake -DFILE=<library> -P set_origin_rpath.cmake: the library's RUNPATH becomes $ORIGIN, for a copy
# that ships beside libkvcore.so.0 in a package (the jar, the NuGet package).
file(RPATH_SET FILE "${FILE}" NEW_RPATH "$ORIGIN")
