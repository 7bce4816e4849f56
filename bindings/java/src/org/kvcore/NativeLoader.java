// SPDX-License-Identifier: Apache-2.0
package org.kvcore;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Locale;

/**
 * Loads libkvcore_java.so: from java.library.path when it is there, otherwise from inside kvcore.jar
 * (native/linux-ARCH/, with the libkvcore.so.0 it needs), as zstd-jni and sqlite-jdbc do. The jar's
 * copies are extracted to a fresh temporary folder (under java.io.tmpdir), loaded, then deleted: a
 * loaded library stays mapped, and nothing is left behind.
 */
final class NativeLoader {
  private static final String JNI_LIBRARY = "libkvcore_java.so";
  private static final String CORE_LIBRARY = "libkvcore.so.0";

  private NativeLoader() {}

  static void load() {
    try {
      System.loadLibrary("kvcore_java");
      return;
    } catch (UnsatisfiedLinkError notOnPath) {
      try {
        loadFromJar();
      } catch (IOException | UnsatisfiedLinkError fromJar) {
        UnsatisfiedLinkError error = new UnsatisfiedLinkError(
            "kvcore: libkvcore_java.so is neither on java.library.path (" + notOnPath.getMessage()
            + ") nor loadable from kvcore.jar: " + fromJar.getMessage());
        error.initCause(fromJar);
        throw error;
      }
    }
  }

  /** native/linux-x86_64 or native/linux-aarch64: the folder CMake packs the libraries into. */
  static String platformFolder() {
    String os = System.getProperty("os.name", "").toLowerCase(Locale.ROOT);
    String arch = System.getProperty("os.arch", "").toLowerCase(Locale.ROOT);
    if (arch.equals("amd64") || arch.equals("x86_64")) {
      arch = "x86_64";
    } else if (arch.equals("arm64") || arch.equals("aarch64")) {
      arch = "aarch64";
    }
    return "native/" + (os.startsWith("linux") ? "linux" : os.replace(' ', '_')) + "-" + arch;
  }

  private static void loadFromJar() throws IOException {
    String folder = platformFolder();
    Path dir = Files.createTempDirectory("kvcore-native-");
    try {
      // The core first: the JNI library's DT_NEEDED libkvcore.so.0 then resolves to this copy.
      System.load(extract(folder, CORE_LIBRARY, dir).toString());
      System.load(extract(folder, JNI_LIBRARY, dir).toString());
    } finally {
      for (String name : new String[] {JNI_LIBRARY, CORE_LIBRARY}) {
        Files.deleteIfExists(dir.resolve(name));
      }
      Files.deleteIfExists(dir);
    }
  }

  private static Path extract(String folder, String name, Path dir) throws IOException {
    String resource = "/" + folder + "/" + name;
    try (InputStream in = NativeLoader.class.getResourceAsStream(resource)) {
      if (in == null) {
        throw new IOException("kvcore.jar has no " + resource + " (built for another platform?)");
      }
      Path file = dir.resolve(name);
      Files.copy(in, file, StandardCopyOption.REPLACE_EXISTING);
      return file;
    }
  }
}
