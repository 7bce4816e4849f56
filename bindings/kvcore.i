/*
 * kvcore.i - the one SWIG interface for the C#, Java and Go bindings.
 *
 * Every opaque C handle becomes a class (C# IDisposable, Java AutoCloseable, Go via the idiomatic
 * wrapper in bindings/go). A failing C call raises in the target language in the same native call that
 * failed, carrying the kvc_status and kvc_last_error_message(): C# and Java throw KvcoreException,
 * Go panics with "kvcore:<status>:<message>" and bindings/go turns that into an error.
 */
%module kvcore

%include <stdint.i>

%{
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kvcore/kvcore.h"

/* The status a %extend body failed with; read and cleared by %exception in the same native call. */
static _Thread_local kvc_status kvc_bind_pending = KVC_OK;

static void kvc_bind_check(kvc_status status) {
    if (status != KVC_OK) kvc_bind_pending = status;
}


/* Runs an export (kvc_stats_to_prometheus or _to_json) twice: once to size it, once to fill it. */
static char* kvc_bind_export(const kvc_stats* stats,
                             kvc_status (*export_fn)(const kvc_stats*, char*, size_t, size_t*)) {
    size_t length = 0;
    kvc_status status = export_fn(stats, NULL, 0, &length);
    if (status != KVC_OK) {
        kvc_bind_check(status);
        return NULL;
    }
    char* text = (char*)malloc(length + 1);
    if (text == NULL) {
        kvc_bind_pending = KVC_ERR_NO_MEMORY; /* the message is stale here, the status is not */
        return NULL;
    }
    status = export_fn(stats, text, length + 1, NULL);
    if (status != KVC_OK) {
        free(text);
        kvc_bind_check(status);
        return NULL;
    }
    return text;
}
%}

/* ---- raising in each language ------------------------------------------------------------------ */

#if defined(SWIGCSHARP)
%insert(runtime) %{
typedef void (SWIGSTDCALL* kvc_csharp_exception_callback)(int status, const char* message);
static kvc_csharp_exception_callback kvc_csharp_raise = NULL;
#ifdef __cplusplus
extern "C"
#endif
SWIGEXPORT void SWIGSTDCALL kvc_csharp_register_exception_callback(kvc_csharp_exception_callback callback) {
    kvc_csharp_raise = callback;
}
%}
%pragma(csharp) imclasscode=%{
  internal class KvcoreExceptionHelper {
    public delegate void ExceptionDelegate(int status, string message);
    static ExceptionDelegate raise = new ExceptionDelegate(SetPending);

    [global::System.Runtime.InteropServices.DllImport("$dllimport", EntryPoint="kvc_csharp_register_exception_callback")]
    static extern void Register(ExceptionDelegate callback);

    static void SetPending(int status, string message) {
      SWIGPendingException.Set(new KvcoreException((Status)status, message));
    }

    static KvcoreExceptionHelper() { Register(raise); }
  }
  // Constructing it registers the callback before the first native call.
  internal static KvcoreExceptionHelper kvcoreExceptionHelper = new KvcoreExceptionHelper();
%}
%define KVC_BIND_RAISE(status, message)
  kvc_csharp_raise((int)(status), (message));
  return $null;
%enddef

#elif defined(SWIGJAVA)
%define KVC_BIND_THROW(status, message)
  {
    jclass kvc_cls = (*jenv)->FindClass(jenv, "org/kvcore/KvcoreException");
    if (kvc_cls != NULL) {
      jmethodID kvc_ctor = (*jenv)->GetMethodID(jenv, kvc_cls, "<init>", "(ILjava/lang/String;)V");
      jstring kvc_msg = (*jenv)->NewStringUTF(jenv, (message));
      if (kvc_ctor != NULL && kvc_msg != NULL) {
        jobject kvc_ex = (*jenv)->NewObject(jenv, kvc_cls, kvc_ctor, (jint)(status), kvc_msg);
        if (kvc_ex != NULL) (*jenv)->Throw(jenv, (jthrowable)kvc_ex);
      }
    }
  }
%enddef
%define KVC_BIND_RAISE(status, message)
  KVC_BIND_THROW(status, message)
  return $null;
%enddef
/* After the call, Java only throws: the wrapper goes on to its freearg code, which releases the Java
   arrays it borrowed (allowed with an exception pending), and the JVM raises on return. */
%define KVC_BIND_RAISE_AFTER_CALL(status, message)
  KVC_BIND_THROW(status, message)
%enddef

#elif defined(SWIGGO)
%define KVC_BIND_RAISE(status, message)
  {
    char kvc_msg[640];
    snprintf(kvc_msg, sizeof kvc_msg, "kvcore:%d:%s", (int)(status), (message));
    _swig_gopanic(kvc_msg);
  }
%enddef
#endif
#if !defined(SWIGJAVA)
%define KVC_BIND_RAISE_AFTER_CALL(status, message)
  KVC_BIND_RAISE(status, message)
%enddef
#endif


%exception {
  $action
  if (kvc_bind_pending != KVC_OK) {
    kvc_status kvc_failed = kvc_bind_pending;
    kvc_bind_pending = KVC_OK;
    KVC_BIND_RAISE_AFTER_CALL(kvc_failed, kvc_last_error_message())
  }
}

/* A closed (disposed) object has a NULL handle: say so instead of crashing. Java checks while converting
   self, the first argument, so that it returns before any array argument is borrowed. */
#if defined(SWIGJAVA)
%define KVC_BIND_HANDLE(TYPE)
%typemap(in) TYPE *self, const TYPE *self {
  $1 = *($1_ltype*)&$input;
  if ($1 == NULL) {
    KVC_BIND_RAISE(KVC_ERR_INVALID_STATE, "the object has been closed")
  }
}
%enddef
#else
%define KVC_BIND_HANDLE(TYPE)
%typemap(check) TYPE *self, const TYPE *self {
  if ($1 == NULL) {
    KVC_BIND_RAISE(KVC_ERR_INVALID_STATE, "the object has been closed")
  }
}
%enddef
#endif

/* An input array `const CTYPE* NAME` as a CSTYPE[] / JTYPE[] / []GOTYPE, without per-element calls; the
   method taking it also takes the count and is wrapped per language by one that passes the length. */
%define KVC_INPUT_ARRAY(CTYPE, NAME, CSTYPE, JTYPE, JNIARRAY, JNIELEM, JNINAME, GOTYPE)
#if defined(SWIGCSHARP)
%typemap(ctype) const CTYPE* NAME "const CTYPE*"
%typemap(imtype, inattributes="[global::System.Runtime.InteropServices.In, global::System.Runtime.InteropServices.MarshalAs(global::System.Runtime.InteropServices.UnmanagedType.LPArray)]") const CTYPE* NAME "CSTYPE[]"
%typemap(cstype) const CTYPE* NAME "CSTYPE[]"
%typemap(csin) const CTYPE* NAME "$csinput"
%typemap(in) const CTYPE* NAME "$1 = ($1_ltype)$input;"
#elif defined(SWIGJAVA)
%typemap(jni) const CTYPE* NAME "JNIARRAY"
%typemap(jtype) const CTYPE* NAME "JTYPE[]"
%typemap(jstype) const CTYPE* NAME "JTYPE[]"
%typemap(javain) const CTYPE* NAME "$javainput"
%typemap(in) const CTYPE* NAME {
  $1 = NULL;
  if ($input != NULL) {
    $1 = ($1_ltype)(*jenv)->Get##JNINAME##ArrayElements(jenv, $input, NULL);
    if ($1 == NULL) return $null; /* OutOfMemoryError is pending */
  }
}
%typemap(freearg) const CTYPE* NAME {
  if ($1 != NULL) (*jenv)->Release##JNINAME##ArrayElements(jenv, $input, (JNIELEM*)$1, JNI_ABORT);
}
#elif defined(SWIGGO)
%typemap(gotype) const CTYPE* NAME "[]GOTYPE"
%typemap(in) const CTYPE* NAME "$1 = ($1_ltype)$input.array;"
#endif
%enddef

/* ---- naming ------------------------------------------------------------------------------------ */

#if defined(SWIGCSHARP)
%rename("%(camelcase)s", %$isfunction) "";
%rename("%(camelcase)s", %$ismember, %$isfunction) "";
#define KVC_CLOSEABLE(TYPE)
#elif defined(SWIGJAVA)
%rename("%(lowercamelcase)s", %$isfunction) "";
%apply int { uint32_t };
%apply long long { uint64_t };
%apply long long { int64_t };
%define KVC_CLOSEABLE(TYPE)
%typemap(javainterfaces) TYPE "AutoCloseable"
%typemap(javacode) TYPE %{
  /** Frees the native object now; using it afterwards throws KvcoreException(INVALID_STATE). */
  @Override
  public void close() {
    delete();
  }
%}
%enddef
#else
%rename("%(camelcase)s", %$isfunction) "";
#define KVC_CLOSEABLE(TYPE)
#endif

/* ---- status ------------------------------------------------------------------------------------ */

#if defined(SWIGCSHARP) || defined(SWIGJAVA)
%rename(Status) kvc_status;
#endif
%rename("%(regex:/^KVC_(ERR_)?(.*)$/\\2/)s", %$isenumitem) "";

#if defined(SWIGJAVA)
%include "enums.swg"
%pragma(java) jniclasscode=%{
  static {
    System.loadLibrary("kvcore_java");
  }
%}
#endif

#if defined(SWIGJAVA)
%rename(versionNumber) kvc_version_number;
%rename(versionString) kvc_version_string;
%rename(statusString) kvc_status_string;
%rename(lastErrorMessage) kvc_last_error_message;
#else
%rename(VersionNumber) kvc_version_number;
%rename(VersionString) kvc_version_string;
%rename(StatusString) kvc_status_string;
%rename(LastErrorMessage) kvc_last_error_message;
#endif
%include "kvcore/common.h"

/* ---- stats ------------------------------------------------------------------------------------- */

/* SWIG sees each handle under its class name, a C typedef of the kvc_ struct, so the helper functions
   it generates for %extend (Class_method) never collide with the kvc_* functions they call. */
%{
typedef struct kvc_recorder_options RecorderOptions;
typedef struct kvc_recorder Recorder;
typedef struct kvc_stats Stats;
%}
KVC_BIND_HANDLE(RecorderOptions)
KVC_BIND_HANDLE(Recorder)
KVC_BIND_HANDLE(Stats)
KVC_CLOSEABLE(RecorderOptions)
KVC_CLOSEABLE(Stats)
KVC_INPUT_ARRAY(uint8_t, outcomes, byte, byte, jbyteArray, jbyte, Byte, byte)
#if defined(SWIGCSHARP)
%csmethodmodifiers Recorder::record_accesses "internal";
#elif defined(SWIGJAVA)
%javamethodmodifiers Recorder::record_accesses "private";
#endif
/* SWIG drops C default arguments, so the default-options constructor is written per language. */
#if defined(SWIGCSHARP)
%typemap(cscode) Recorder %{
  /// <summary>A recorder with the default options.</summary>
  public Recorder() : this(null) {}

  /// <summary>Records outcomes.Length lookups in one call (non-zero = hit): one per block of a prefix lookup.</summary>
  public void RecordAccesses(byte[] outcomes) {
    if (outcomes == null) throw new global::System.ArgumentNullException("outcomes");
    RecordAccesses(outcomes, (uint)outcomes.Length);
  }
%}
#elif defined(SWIGJAVA)
%typemap(javainterfaces) Recorder "AutoCloseable"
%typemap(javacode) Recorder %{
  /** A recorder with the default options. */
  public Recorder() {
    this(null);
  }

  /** Records outcomes.length lookups in one call (non-zero = hit): one per block of a prefix lookup. */
  public void recordAccesses(byte[] outcomes) {
    recordAccesses(outcomes, outcomes.length);
  }

  /** Frees the native object now; using it afterwards throws KvcoreException(INVALID_STATE). */
  @Override
  public void close() {
    delete();
  }
%}
#endif

/* Options for a Recorder: component label, window sizes, per-layer counters. */
typedef struct {} RecorderOptions;
%extend RecorderOptions {
  RecorderOptions() {
    kvc_recorder_options* options = NULL;
    kvc_bind_check(kvc_recorder_options_create(&options));
    return options;
  }
  ~RecorderOptions() { kvc_recorder_options_destroy($self); }
  void set_component(const char* component) {
    kvc_bind_check(kvc_recorder_options_set_component($self, component));
  }
  void set_window_accesses(uint32_t accesses) {
    kvc_bind_check(kvc_recorder_options_set_window_accesses($self, accesses));
  }
  void set_window_seconds(uint32_t seconds) {
    kvc_bind_check(kvc_recorder_options_set_window_seconds($self, seconds));
  }
  void set_layers(uint32_t layers) { kvc_bind_check(kvc_recorder_options_set_layers($self, layers)); }
}

/* Records cache accesses from any thread; Snapshot() returns the counters and rates so far. */
typedef struct {} Recorder;
%extend Recorder {
  Recorder(const RecorderOptions* options) {
    kvc_recorder* recorder = NULL;
    kvc_bind_check(kvc_recorder_create(options, &recorder));
    return recorder;
  }
  ~Recorder() { kvc_recorder_destroy($self); }
  void record_access(bool hit) { kvc_bind_check(kvc_recorder_record_access($self, hit ? 1u : 0u)); }
  void record_accesses(const uint8_t* outcomes, size_t n) {
    kvc_bind_check(kvc_recorder_record_accesses($self, outcomes, n));
  }
  void record_layer_access(uint32_t layer, bool hit) {
    kvc_bind_check(kvc_recorder_record_layer_access($self, layer, hit ? 1u : 0u));
  }
  void record_tokens(uint64_t queried, uint64_t hit) {
    kvc_bind_check(kvc_recorder_record_tokens($self, queried, hit));
  }
  void record_reused_tokens(uint64_t tokens) { kvc_bind_check(kvc_recorder_record_reused_tokens($self, tokens)); }
  void record_insertions(uint64_t count) { kvc_bind_check(kvc_recorder_record_insertions($self, count)); }
  void record_evictions(uint64_t count) { kvc_bind_check(kvc_recorder_record_evictions($self, count)); }
  void record_memory_pressure() { kvc_bind_check(kvc_recorder_record_memory_pressure($self)); }
  void add_bytes(int64_t delta) { kvc_bind_check(kvc_recorder_add_bytes($self, delta)); }
  void set_bytes(uint64_t bytes) { kvc_bind_check(kvc_recorder_set_bytes($self, bytes)); }
  %newobject snapshot;
  Stats* snapshot() {
    kvc_stats* stats = NULL;
    kvc_bind_check(kvc_recorder_snapshot($self, &stats));
    return stats;
  }
}

/* An immutable snapshot of a Recorder. */
%nodefaultctor Stats; /* only Recorder.snapshot() makes one */
typedef struct {} Stats;
%extend Stats {
  ~Stats() { kvc_stats_destroy($self); }
  const char* component() { return kvc_stats_component($self); }
  uint64_t hits() { return kvc_stats_hits($self); }
  uint64_t misses() { return kvc_stats_misses($self); }
  uint64_t lookups() { return kvc_stats_lookups($self); }
  double hit_rate() { return kvc_stats_hit_rate($self); }
  uint64_t insertions() { return kvc_stats_insertions($self); }
  uint64_t evictions() { return kvc_stats_evictions($self); }
  uint64_t memory_pressure_events() { return kvc_stats_memory_pressure_events($self); }
  uint64_t bytes_in_use() { return kvc_stats_bytes_in_use($self); }
  uint64_t peak_bytes() { return kvc_stats_peak_bytes($self); }
  uint64_t tokens_queried() { return kvc_stats_tokens_queried($self); }
  uint64_t tokens_hit() { return kvc_stats_tokens_hit($self); }
  uint64_t tokens_reused() { return kvc_stats_tokens_reused($self); }
  double token_hit_rate() { return kvc_stats_token_hit_rate($self); }
  uint32_t window_size() { return kvc_stats_window_size($self); }
  uint64_t window_lookups() { return kvc_stats_window_lookups($self); }
  uint64_t window_hits() { return kvc_stats_window_hits($self); }
  double window_hit_rate() { return kvc_stats_window_hit_rate($self); }
  uint32_t window_seconds() { return kvc_stats_window_seconds($self); }
  uint64_t time_window_lookups() { return kvc_stats_time_window_lookups($self); }
  uint64_t time_window_hits() { return kvc_stats_time_window_hits($self); }
  double time_window_hit_rate() { return kvc_stats_time_window_hit_rate($self); }
  uint32_t layers() { return kvc_stats_layers($self); }
  uint64_t layer_hits(uint32_t layer) {
    uint64_t hits = 0;
    kvc_bind_check(kvc_stats_layer_counts($self, layer, &hits, NULL));
    return hits;
  }
  uint64_t layer_misses(uint32_t layer) {
    uint64_t misses = 0;
    kvc_bind_check(kvc_stats_layer_counts($self, layer, NULL, &misses));
    return misses;
  }
  double layer_hit_rate(uint32_t layer) {
    double rate = 0.0;
    kvc_bind_check(kvc_stats_layer_hit_rate($self, layer, &rate));
    return rate;
  }
  %newobject to_prometheus;
  char* to_prometheus() { return kvc_bind_export($self, kvc_stats_to_prometheus); }
  %newobject to_json;
  char* to_json() { return kvc_bind_export($self, kvc_stats_to_json); }
}
