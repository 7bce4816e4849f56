// SPDX-License-Identifier: Apache-2.0
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

/* A message of the binding's own (a check made before the C call), preferred over kvc_last_error_message. */
static _Thread_local const char* kvc_bind_pending_message = NULL;

static void kvc_bind_check(kvc_status status) {
    if (status != KVC_OK) kvc_bind_pending = status;
}

static void kvc_bind_fail(kvc_status status, const char* message) {
    kvc_bind_pending = status;
    kvc_bind_pending_message = message;
}

/* The failed call's message, taken once. */
static const char* kvc_bind_take_message(void) {
    const char* message = kvc_bind_pending_message;
    kvc_bind_pending_message = NULL;
    return message != NULL ? message : kvc_last_error_message();
}


/* Runs an export twice: once to size it, once to fill it. One function per handle type. */
#define KVC_BIND_EXPORTER(NAME, TYPE)                                                                  \
    static char* NAME(const TYPE* object, kvc_status (*export_fn)(const TYPE*, char*, size_t, size_t*)) { \
        size_t length = 0;                                                                             \
        kvc_status status = export_fn(object, NULL, 0, &length);                                       \
        if (status != KVC_OK) {                                                                        \
            kvc_bind_check(status);                                                                    \
            return NULL;                                                                               \
        }                                                                                              \
        char* text = (char*)malloc(length + 1);                                                        \
        if (text == NULL) {                                                                            \
            kvc_bind_pending = KVC_ERR_NO_MEMORY; /* the message is stale here, the status is not */  \
            return NULL;                                                                               \
        }                                                                                              \
        status = export_fn(object, text, length + 1, NULL);                                            \
        if (status != KVC_OK) {                                                                        \
            free(text);                                                                                \
            kvc_bind_check(status);                                                                    \
            return NULL;                                                                               \
        }                                                                                              \
        return text;                                                                                   \
    }
KVC_BIND_EXPORTER(kvc_bind_export, kvc_stats)
KVC_BIND_EXPORTER(kvc_bind_export_exposition, kvc_exposition)
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
/* cgo asks pkg-config for kvcore's flags: PKG_CONFIG_PATH=<prefix>/lib/pkgconfig is all a Go build
   needs, and kvcore.pc's rpath lets the program find libkvcore.so.0 when it runs. */
%insert(cgo_comment_typedefs) %{
#cgo pkg-config: kvcore
%}
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
    KVC_BIND_RAISE_AFTER_CALL(kvc_failed, kvc_bind_take_message())
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

/* An array argument `QUAL CTYPE* NAME` as a CSTYPE[] / JTYPE[] / []GOTYPE, without per-element calls; the
   method taking it also takes the count and is wrapped per language by one that passes the length.
   DIRECTION is In (read by the call) or Out (filled by it); JNI_MODE is how Java releases the array:
   JNI_ABORT (nothing to copy back) or 0 (copy back). */
%define KVC_ARRAY(QUAL, DIRECTION, JNI_MODE, CTYPE, NAME, CSTYPE, JTYPE, JNIARRAY, JNIELEM, JNINAME, GOTYPE)
#if defined(SWIGCSHARP)
%typemap(ctype) QUAL CTYPE* NAME "QUAL CTYPE*"
%typemap(imtype, inattributes="[global::System.Runtime.InteropServices.DIRECTION, global::System.Runtime.InteropServices.MarshalAs(global::System.Runtime.InteropServices.UnmanagedType.LPArray)]") QUAL CTYPE* NAME "CSTYPE[]"
%typemap(cstype) QUAL CTYPE* NAME "CSTYPE[]"
%typemap(csin) QUAL CTYPE* NAME "$csinput"
%typemap(in) QUAL CTYPE* NAME "$1 = ($1_ltype)$input;"
#elif defined(SWIGJAVA)
%typemap(jni) QUAL CTYPE* NAME "JNIARRAY"
%typemap(jtype) QUAL CTYPE* NAME "JTYPE[]"
%typemap(jstype) QUAL CTYPE* NAME "JTYPE[]"
%typemap(javain) QUAL CTYPE* NAME "$javainput"
%typemap(in) QUAL CTYPE* NAME {
  $1 = NULL;
  if ($input != NULL) {
    $1 = ($1_ltype)(*jenv)->Get##JNINAME##ArrayElements(jenv, $input, NULL);
    if ($1 == NULL) return $null; /* OutOfMemoryError is pending */
  }
}
%typemap(freearg) QUAL CTYPE* NAME {
  if ($1 != NULL) (*jenv)->Release##JNINAME##ArrayElements(jenv, $input, (JNIELEM*)$1, JNI_MODE);
}
#elif defined(SWIGGO)
%typemap(gotype) QUAL CTYPE* NAME "[]GOTYPE"
%typemap(in) QUAL CTYPE* NAME "$1 = ($1_ltype)$input.array;"
#endif
%enddef
%define KVC_INPUT_ARRAY(CTYPE, NAME, CSTYPE, JTYPE, JNIARRAY, JNIELEM, JNINAME, GOTYPE)
KVC_ARRAY(const, In, JNI_ABORT, CTYPE, NAME, CSTYPE, JTYPE, JNIARRAY, JNIELEM, JNINAME, GOTYPE)
%enddef
%define KVC_OUTPUT_ARRAY(CTYPE, NAME, CSTYPE, JTYPE, JNIARRAY, JNIELEM, JNINAME, GOTYPE)
KVC_ARRAY(, Out, 0, CTYPE, NAME, CSTYPE, JTYPE, JNIARRAY, JNIELEM, JNINAME, GOTYPE)
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
%rename(EvictionPolicy) kvc_eviction_policy; /* shared by the pool, the store and the TTL cache */
#endif
%rename("%(regex:/^KVC_(ERR_|MEMORY_|DTYPE_|HASH_|EVENTS_|EVICTION_|INDEX_KEY_|INDEX_TIER_|INDEX_COUNTER_)?(.*)$/\\2/)s", %$isenumitem) "";

#if defined(SWIGJAVA)
%include "enums.swg"
%pragma(java) jniclasscode=%{
  static {
    NativeLoader.load();  // java.library.path, else the copy inside kvcore.jar
  }
%}
/* A null enum argument is the caller's error, raised as the binding's exception rather than an NPE. */
%typemap(javain) enum SWIGTYPE "KvcoreException.requireNonNull($javainput, \"$javainput\").swigValue()"
#endif

#if defined(SWIGJAVA)
%rename(versionNumber) kvc_version_number;
%rename(versionString) kvc_version_string;
%rename(statusString) kvc_status_string;
%rename(lastErrorMessage) kvc_last_error_message;
%rename(evictionPolicyName) kvc_eviction_policy_name;
#else
%rename(VersionNumber) kvc_version_number;
%rename(VersionString) kvc_version_string;
%rename(StatusString) kvc_status_string;
%rename(LastErrorMessage) kvc_last_error_message;
%rename(EvictionPolicyName) kvc_eviction_policy_name;
#endif
%include "kvcore/common.h"

/* ---- stats ------------------------------------------------------------------------------------- */

/* SWIG sees each handle under its class name, a C typedef of the kvc_ struct, so the helper functions
   it generates for %extend (Class_method) never collide with the kvc_* functions they call. */
%{
typedef struct kvc_recorder_options RecorderOptions;
typedef struct kvc_recorder Recorder;
typedef struct kvc_stats Stats;
typedef struct kvc_exposition Exposition;
%}
KVC_BIND_HANDLE(RecorderOptions)
KVC_BIND_HANDLE(Recorder)
KVC_BIND_HANDLE(Stats)
KVC_BIND_HANDLE(Exposition)
KVC_CLOSEABLE(RecorderOptions)
KVC_CLOSEABLE(Stats)
KVC_CLOSEABLE(Exposition)
KVC_INPUT_ARRAY(uint8_t, outcomes, byte, byte, jbyteArray, jbyte, Byte, byte)
#if defined(SWIGCSHARP)
%csmethodmodifiers Recorder::record_accesses "internal";
%csmethodmodifiers Stats::metric_count "internal";
%csmethodmodifiers Stats::metric_name "internal";
%typemap(cscode) Stats %{
  /// <summary>The component's own metrics by name (the scheduler's sched_batch_size_avg, ...; none for the
  /// caches); Metric(name) reads one.</summary>
  public global::System.Collections.Generic.Dictionary<string, double> Metrics() {
    var byName = new global::System.Collections.Generic.Dictionary<string, double>();
    uint count = MetricCount();
    for (uint i = 0; i < count; i++) {
      string name = MetricName(i);
      byName[name] = Metric(name);
    }
    return byName;
  }
%}
#elif defined(SWIGJAVA)
%javamethodmodifiers Recorder::record_accesses "private";
%javamethodmodifiers Stats::metric_count "private";
%javamethodmodifiers Stats::metric_name "private";
%typemap(javacode) Stats %{
  /** Frees the native object now; using it afterwards throws KvcoreException(INVALID_STATE). */
  @Override
  public void close() {
    delete();
  }

  /** The component's own metrics by name (the scheduler's sched_batch_size_avg, ...; none for the caches), in
   * the C API's order; metric(name) reads one. */
  public java.util.Map<String, Double> metrics() {
    java.util.Map<String, Double> byName = new java.util.LinkedHashMap<>();
    int count = metricCount();
    for (int i = 0; i < count; i++) {
      String name = metricName(i);
      byName.put(name, metric(name));
    }
    return byName;
  }
%}
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
    recordAccesses(outcomes, KvcoreException.requireNonNull(outcomes, "outcomes").length);
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
  /* count (1..64) lookups, bit i of hits = lookup i's outcome (1 = hit): the cheapest way to record. */
  void record_access_bits(uint64_t hits, uint32_t count) {
    kvc_bind_check(kvc_recorder_record_access_bits($self, hits, count));
  }
  /* A prefix lookup whose first `hits` blocks hit and the next `misses` missed: one call per request. */
  void record_prefix_lookup(uint64_t hits, uint64_t misses) {
    kvc_bind_check(kvc_recorder_record_prefix_lookup($self, hits, misses));
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
  uint64_t negative_hits() { return kvc_stats_negative_hits($self); }
  uint64_t loads() { return kvc_stats_loads($self); }
  uint64_t load_failures() { return kvc_stats_load_failures($self); }
  uint64_t expirations() { return kvc_stats_expirations($self); }
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
  /* A component's own metrics by name (the scheduler's); none for the caches. */
  uint32_t metric_count() { return kvc_stats_metric_count($self); }
  const char* metric_name(uint32_t i) { return kvc_stats_metric_name($self, i); }
  /* NOT_FOUND for a name the snapshot lacks. */
  double metric(const char* name) {
    double value = 0.0;
    kvc_bind_check(kvc_stats_metric($self, name, &value));
    return value;
  }
  %newobject to_prometheus;
  char* to_prometheus() { return kvc_bind_export($self, kvc_stats_to_prometheus); }
  %newobject to_json;
  char* to_json() { return kvc_bind_export($self, kvc_stats_to_json); }
}

/* Several components' snapshots as one Prometheus text, each metric family's HELP and TYPE once. */
typedef struct {} Exposition;
%extend Exposition {
  Exposition() {
    kvc_exposition* exposition = NULL;
    kvc_bind_check(kvc_exposition_create(&exposition));
    return exposition;
  }
  ~Exposition() { kvc_exposition_destroy($self); }
  /* Adds a copy of the snapshot; a component already added is INVALID_ARGUMENT. */
  void add(const Stats* stats) { kvc_bind_check(kvc_exposition_add($self, stats)); }
  %newobject to_prometheus;
  char* to_prometheus() { return kvc_bind_export_exposition($self, kvc_exposition_to_prometheus); }
}

/* ---- pool -------------------------------------------------------------------------------------- */

/* The enums come from kvcore/pool.h; its functions are bound through the classes below. */
#if defined(SWIGCSHARP) || defined(SWIGJAVA)
%rename(Memory) kvc_memory;
%rename(DType) kvc_dtype;
%rename(HashAlgo) kvc_hash_algo;
%rename(EventEncoding) kvc_event_encoding;
#endif
%rename("$ignore", regextarget=1, %$isfunction) "^kvc_(pool|sequence_options|hash_blocks)";
%ignore kvc_pool;
%ignore kvc_pool_options;
%ignore kvc_sequence_options;
%include "kvcore/pool.h"

%{
#include <pthread.h>

typedef struct kvc_pool_options PoolOptions;
typedef struct kvc_sequence_options SequenceOptions;
typedef struct kvc_pool Pool;

/* A scheduler borrows its pool and frees its sequences there when destroyed, so a pool must outlive its
   schedulers; the garbage collectors finalize unreachable objects in any order, and a program may close
   the pool first. The binding keeps a list of its schedulers with their pools: a pool closed while one of
   its schedulers lives is destroyed with the last of them. The session store a scheduler borrows
   (set_session_store) is listed the same way: closed while attached, it is destroyed when the last
   scheduler holding it is destroyed or detaches it. */
typedef struct kvc_bind_sched_link {
    kvc_sched* sched;
    kvc_pool* pool;
    int pool_closed;
    kvc_store* store; /* NULL: none attached */
    int store_closed;
    struct kvc_bind_sched_link* next;
} kvc_bind_sched_link;
static kvc_bind_sched_link* kvc_bind_scheds = NULL;
static pthread_mutex_t kvc_bind_scheds_lock = PTHREAD_MUTEX_INITIALIZER;

static void kvc_bind_pool_close(kvc_pool* pool) {
    int in_use = 0;
    kvc_bind_sched_link* link;
    pthread_mutex_lock(&kvc_bind_scheds_lock);
    for (link = kvc_bind_scheds; link != NULL; link = link->next) {
        if (link->pool != pool) continue;
        link->pool_closed = 1;
        in_use = 1;
    }
    pthread_mutex_unlock(&kvc_bind_scheds_lock);
    if (!in_use) kvc_pool_destroy(pool);
}

static void kvc_bind_store_close(kvc_store* store) {
    int in_use = 0;
    kvc_bind_sched_link* link;
    if (store == NULL) return; /* a link's NULL is "no store", never a closed one */
    pthread_mutex_lock(&kvc_bind_scheds_lock);
    for (link = kvc_bind_scheds; link != NULL; link = link->next) {
        if (link->store != store) continue;
        link->store_closed = 1;
        in_use = 1;
    }
    pthread_mutex_unlock(&kvc_bind_scheds_lock);
    if (!in_use) kvc_store_destroy(store);
}

/* The store `link` held (before it was unlisted or given another), when it was closed and no other listed
   scheduler holds it: the caller destroys it after the lock. Called under the lock. */
static kvc_store* kvc_bind_orphan_store(const kvc_bind_sched_link* link) {
    kvc_bind_sched_link* other;
    if (!link->store_closed) return NULL;
    for (other = kvc_bind_scheds; other != NULL; other = other->next)
        if (other != link && other->store == link->store) return NULL;
    return link->store;
}

/* A scheduler over pool, listed; NULL with the status set. */
static kvc_sched* kvc_bind_sched_create(const kvc_sched_options* options, kvc_pool* pool) {
    kvc_sched* sched = NULL;
    kvc_bind_sched_link* link = (kvc_bind_sched_link*)calloc(1, sizeof(kvc_bind_sched_link));
    kvc_status status;
    if (link == NULL) {
        kvc_bind_pending = KVC_ERR_NO_MEMORY;
        return NULL;
    }
    status = kvc_sched_create(options, pool, &sched);
    if (status != KVC_OK) {
        free(link);
        kvc_bind_check(status);
        return NULL;
    }
    link->sched = sched;
    link->pool = pool;
    pthread_mutex_lock(&kvc_bind_scheds_lock);
    link->next = kvc_bind_scheds;
    kvc_bind_scheds = link;
    pthread_mutex_unlock(&kvc_bind_scheds_lock);
    return sched;
}

/* Destroys the scheduler while it is still listed (so its pool stays), then its closed pool if it was the
   pool's last one. */
static void kvc_bind_sched_destroy(kvc_sched* sched) {
    kvc_bind_sched_link **at, *link = NULL, *other;
    kvc_pool* orphan = NULL;
    kvc_store* orphan_store = NULL;
    kvc_sched_destroy(sched);
    pthread_mutex_lock(&kvc_bind_scheds_lock);
    for (at = &kvc_bind_scheds; *at != NULL; at = &(*at)->next) {
        if ((*at)->sched != sched) continue;
        link = *at;
        *at = link->next;
        break;
    }
    if (link != NULL && link->pool_closed) {
        orphan = link->pool;
        for (other = kvc_bind_scheds; other != NULL; other = other->next)
            if (other->pool == orphan) orphan = NULL;
    }
    if (link != NULL) orphan_store = kvc_bind_orphan_store(link);
    pthread_mutex_unlock(&kvc_bind_scheds_lock);
    free(link);
    if (orphan != NULL) kvc_pool_destroy(orphan);
    if (orphan_store != NULL) kvc_store_destroy(orphan_store);
}

/* Attaches store to the scheduler, or detaches with store NULL. The C call runs under the lock, so that a
   close of either store on another thread (a finalizer) sees the list as the scheduler is; the store it
   replaces is destroyed if it was closed and no other scheduler holds it. */
static void kvc_bind_sched_set_store(kvc_sched* sched, kvc_store* store) {
    kvc_bind_sched_link* link;
    kvc_store* orphan = NULL;
    kvc_status status;
    pthread_mutex_lock(&kvc_bind_scheds_lock);
    status = kvc_sched_set_session_store(sched, store);
    for (link = kvc_bind_scheds; status == KVC_OK && link != NULL; link = link->next) {
        if (link->sched != sched) continue;
        if (link->store != store) {
            orphan = kvc_bind_orphan_store(link);
            link->store = store;
            link->store_closed = 0;
        }
        break;
    }
    pthread_mutex_unlock(&kvc_bind_scheds_lock);
    kvc_bind_check(status);
    if (orphan != NULL) kvc_store_destroy(orphan);
}
%}
KVC_BIND_HANDLE(PoolOptions)
KVC_BIND_HANDLE(SequenceOptions)
KVC_BIND_HANDLE(Pool)
KVC_CLOSEABLE(PoolOptions)
KVC_CLOSEABLE(SequenceOptions)
KVC_CLOSEABLE(Pool)
KVC_INPUT_ARRAY(int32_t, tokens, int, int, jintArray, jint, Int, int32)
KVC_INPUT_ARRAY(int32_t, blocks, int, int, jintArray, jint, Int, int32)
KVC_OUTPUT_ARRAY(int32_t, out_blocks, int, int, jintArray, jint, Int, int32)
KVC_OUTPUT_ARRAY(int32_t, out_pairs, int, int, jintArray, jint, Int, int32)
KVC_OUTPUT_ARRAY(int64_t, out_slots, long, long, jlongArray, jlong, Long, int64)
KVC_OUTPUT_ARRAY(uint8_t, out_bytes, byte, byte, jbyteArray, jbyte, Byte, byte)
KVC_OUTPUT_ARRAY(uint64_t, out_hashes, ulong, long, jlongArray, jlong, Long, uint64)

/* The array-taking methods are internal; each language wraps them with ones that size the arrays. */
#if defined(SWIGCSHARP)
%define KVC_INTERNAL(NAME) %csmethodmodifiers NAME "internal"; %enddef
#elif defined(SWIGJAVA)
%define KVC_INTERNAL(NAME) %javamethodmodifiers NAME "private"; %enddef
#else
%define KVC_INTERNAL(NAME) %enddef
#endif
KVC_INTERNAL(Pool::create_sequence_raw)
KVC_INTERNAL(Pool::append_raw)
KVC_INTERNAL(Pool::block_table_size)
KVC_INTERNAL(Pool::block_table_into)
KVC_INTERNAL(Pool::slot_mapping_into)
KVC_INTERNAL(Pool::copies_pending)
KVC_INTERNAL(Pool::drain_copies_into)
KVC_INTERNAL(Pool::allocate_blocks_into)
KVC_INTERNAL(Pool::free_blocks_raw)
KVC_INTERNAL(Pool::events_size)
KVC_INTERNAL(Pool::drain_events_into)
KVC_INTERNAL(Pool::hash_blocks_into)

#if defined(SWIGCSHARP)
%typemap(cscode) Pool %{
  /// <summary>A pool with the default options.</summary>
  public Pool() : this(null) {}
  /// <summary>A sequence from its prompt; options (may be null) carry LoRA, salt, multimodal keys, priority.</summary>
  public ulong CreateSequence(int[] prompt, SequenceOptions options = null) {
    if (prompt == null) throw new global::System.ArgumentNullException("prompt");
    return CreateSequenceRaw(prompt, (uint)prompt.Length, options);
  }
  /// <summary>Appends generated tokens with their slots.</summary>
  public void Append(ulong seq, params int[] tokens) {
    if (tokens == null) throw new global::System.ArgumentNullException("tokens");
    AppendRaw(seq, tokens, (uint)tokens.Length);
  }
  /// <summary>The block table (0 = the null block).</summary>
  public int[] BlockTable(ulong seq) {
    var blocks = new int[BlockTableSize(seq)];
    BlockTableInto(seq, blocks, (uint)blocks.Length);
    return blocks;
  }
  /// <summary>Slots of tokens [first, first + count).</summary>
  public long[] SlotMapping(ulong seq, uint first, uint count) {
    var slots = new long[count];
    SlotMappingInto(seq, first, slots, count);
    return slots;
  }
  /// <summary>Copy-on-write copies to perform: src0, dst0, src1, dst1, ...</summary>
  public int[] DrainCopies() {
    var pairs = new int[2 * CopiesPending()];
    DrainCopiesInto(pairs, (uint)pairs.Length / 2);
    return pairs;
  }
  /// <summary>n raw blocks, all or none.</summary>
  public int[] AllocateBlocks(uint n) {
    var blocks = new int[n];
    AllocateBlocksInto(blocks, n);
    return blocks;
  }
  public void FreeBlocks(params int[] blocks) {
    if (blocks == null) throw new global::System.ArgumentNullException("blocks");
    FreeBlocksRaw(blocks, (uint)blocks.Length);
  }
  /// <summary>Pending KV events as one msgpack EventBatch in vLLM's wire format; drains them.</summary>
  public byte[] DrainEvents(EventEncoding encoding) {
    var bytes = new byte[EventsSize(encoding)];
    DrainEventsInto(encoding, bytes, (uint)bytes.Length);
    return bytes;
  }
  /// <summary>One hash per full block, as vLLM publishes them in KV events.</summary>
  public static ulong[] HashBlocks(HashAlgo algo, string seed, uint blockSize, int[] tokens, SequenceOptions options = null) {
    if (tokens == null) throw new global::System.ArgumentNullException("tokens");
    var hashes = new ulong[blockSize == 0 ? 0 : tokens.Length / blockSize];
    HashBlocksInto(algo, seed, blockSize, tokens, (uint)tokens.Length, options, hashes, (uint)hashes.Length);
    return hashes;
  }
%}
#elif defined(SWIGJAVA)
%typemap(javacode) Pool %{
  /** A pool with the default options. */
  public Pool() {
    this(null);
  }

  /** Frees the pool and every sequence in it (its memory once the last Scheduler over it is closed too); using
   * it afterwards throws KvcoreException(INVALID_STATE). */
  @Override
  public void close() {
    delete();
  }

  /** A sequence from its prompt; options (may be null) carry LoRA, salt, multimodal keys, priority. */
  public long createSequence(int[] prompt, SequenceOptions options) {
    return createSequenceRaw(prompt, KvcoreException.requireNonNull(prompt, "prompt").length, options);
  }

  public long createSequence(int[] prompt) {
    return createSequence(prompt, null);
  }

  /** Appends generated tokens with their slots. */
  public void append(long seq, int... tokens) {
    appendRaw(seq, tokens, KvcoreException.requireNonNull(tokens, "tokens").length);
  }

  /** The block table (0 = the null block). */
  public int[] blockTable(long seq) {
    int[] blocks = new int[(int) blockTableSize(seq)];
    blockTableInto(seq, blocks, blocks.length);
    return blocks;
  }

  /** Slots of tokens [first, first + count). */
  public long[] slotMapping(long seq, long first, int count) {
    long[] slots = new long[count];
    slotMappingInto(seq, first, slots, count);
    return slots;
  }

  /** Copy-on-write copies to perform: src0, dst0, src1, dst1, ... */
  public int[] drainCopies() {
    int[] pairs = new int[(int) (2 * copiesPending())];
    drainCopiesInto(pairs, pairs.length / 2);
    return pairs;
  }

  /** n raw blocks, all or none. */
  public int[] allocateBlocks(int n) {
    int[] blocks = new int[n];
    allocateBlocksInto(blocks, n);
    return blocks;
  }

  public void freeBlocks(int... blocks) {
    freeBlocksRaw(blocks, KvcoreException.requireNonNull(blocks, "blocks").length);
  }

  /** Pending KV events as one msgpack EventBatch in vLLM's wire format; drains them. */
  public byte[] drainEvents(EventEncoding encoding) {
    byte[] bytes = new byte[(int) eventsSize(encoding)];
    drainEventsInto(encoding, bytes, bytes.length);
    return bytes;
  }

  /** One hash per full block (unsigned 64-bit values in a long[]), as vLLM publishes them in KV events. */
  public static long[] hashBlocks(HashAlgo algo, String seed, int blockSize, int[] tokens, SequenceOptions options) {
    KvcoreException.requireNonNull(tokens, "tokens");
    long[] hashes = new long[blockSize <= 0 ? 0 : tokens.length / blockSize];
    hashBlocksInto(algo, seed, blockSize, tokens, tokens.length, options, hashes, hashes.length);
    return hashes;
  }
%}
#endif

/* Options for a Pool: sizes, model shape, memory, hash, sliding window, events. */
typedef struct {} PoolOptions;
%extend PoolOptions {
  PoolOptions() {
    kvc_pool_options* options = NULL;
    kvc_bind_check(kvc_pool_options_create(&options));
    return options;
  }
  ~PoolOptions() { kvc_pool_options_destroy($self); }
  void set_num_blocks(uint32_t n) { kvc_bind_check(kvc_pool_options_set_num_blocks($self, n)); }
  void set_block_size(uint32_t tokens) { kvc_bind_check(kvc_pool_options_set_block_size($self, tokens)); }
  void set_model_shape(uint32_t layers, uint32_t kv_heads, uint32_t head_dim, kvc_dtype dtype) {
    kvc_bind_check(kvc_pool_options_set_model_shape($self, layers, kv_heads, head_dim, dtype));
  }
  void set_memory(kvc_memory memory) { kvc_bind_check(kvc_pool_options_set_memory($self, memory)); }
  void set_hash(kvc_hash_algo algo, const char* seed) { kvc_bind_check(kvc_pool_options_set_hash($self, algo, seed)); }
  void set_prefix_caching(bool enabled) { kvc_bind_check(kvc_pool_options_set_prefix_caching($self, enabled ? 1u : 0u)); }
  void set_sliding_window(uint32_t tokens) { kvc_bind_check(kvc_pool_options_set_sliding_window($self, tokens)); }
  void set_events(bool enabled, const char* medium, uint32_t max_pending) {
    kvc_bind_check(kvc_pool_options_set_events($self, enabled ? 1u : 0u, medium, max_pending));
  }
  void set_window_requests(uint32_t requests) { kvc_bind_check(kvc_pool_options_set_window_requests($self, requests)); }
  /* Which free cached block goes first within a retention priority (default LRU). */
  void set_eviction_policy(kvc_eviction_policy policy) { kvc_bind_check(kvc_pool_options_set_eviction_policy($self, policy)); }
  /* Off: the pool keeps no statistics and pays nothing for them; Snapshot then throws INVALID_STATE. */
  void set_statistics(bool enabled) { kvc_bind_check(kvc_pool_options_set_statistics($self, enabled ? 1u : 0u)); }
}

/* A request's extra keys (LoRA, cache salt, multimodal inputs) and retention priority. */
typedef struct {} SequenceOptions;
%extend SequenceOptions {
  SequenceOptions() {
    kvc_sequence_options* options = NULL;
    kvc_bind_check(kvc_sequence_options_create(&options));
    return options;
  }
  ~SequenceOptions() { kvc_sequence_options_destroy($self); }
  void set_lora_name(const char* name) { kvc_bind_check(kvc_sequence_options_set_lora_name($self, name)); }
  void set_lora_id(int64_t lora_id) { kvc_bind_check(kvc_sequence_options_set_lora_id($self, lora_id)); }
  void set_cache_salt(const char* salt) { kvc_bind_check(kvc_sequence_options_set_cache_salt($self, salt)); }
  void add_multimodal(const char* hash, uint64_t offset, uint64_t length) {
    kvc_bind_check(kvc_sequence_options_add_multimodal($self, hash, offset, length));
  }
  void set_priority(uint32_t priority, uint64_t duration_ms) {
    kvc_bind_check(kvc_sequence_options_set_priority($self, priority, duration_ms));
  }
}

/* The paged KV block pool. Sequences are 64-bit ids. Not thread-safe: drive it from one thread. */
typedef struct {} Pool;
%extend Pool {
  Pool(const PoolOptions* options) {
    kvc_pool* pool = NULL;
    kvc_bind_check(kvc_pool_create(options, &pool));
    return pool;
  }
  ~Pool() { kvc_bind_pool_close($self); }
  uint64_t create_sequence_raw(const int32_t* tokens, size_t n, const SequenceOptions* options) {
    kvc_sequence_id seq = 0;
    kvc_bind_check(kvc_pool_sequence_create($self, tokens, n, options, &seq));
    return seq;
  }
  size_t cached_prefix(uint64_t seq) {
    size_t tokens = 0;
    kvc_bind_check(kvc_pool_cached_prefix($self, seq, &tokens));
    return tokens;
  }
  /* Returns the tokens reused from the prefix cache. */
  size_t allocate(uint64_t seq, size_t num_tokens) {
    size_t cached = 0;
    kvc_bind_check(kvc_pool_allocate($self, seq, num_tokens, &cached));
    return cached;
  }
  void append_raw(uint64_t seq, const int32_t* tokens, size_t n) { kvc_bind_check(kvc_pool_append($self, seq, tokens, n)); }
  uint64_t fork(uint64_t seq) {
    kvc_sequence_id child = 0;
    kvc_bind_check(kvc_pool_fork($self, seq, &child));
    return child;
  }
  uint64_t pin_prefix(uint64_t seq) {
    kvc_sequence_id pin = 0;
    kvc_bind_check(kvc_pool_pin_prefix($self, seq, &pin));
    return pin;
  }
  void free_sequence(uint64_t seq) { kvc_bind_check(kvc_pool_sequence_free($self, seq)); }
  size_t sequence_tokens(uint64_t seq) {
    size_t tokens = 0;
    kvc_bind_check(kvc_pool_sequence_tokens($self, seq, &tokens));
    return tokens;
  }
  size_t block_table_size(uint64_t seq) {
    size_t count = 0;
    kvc_bind_check(kvc_pool_block_table($self, seq, NULL, 0, &count));
    return count;
  }
  void block_table_into(uint64_t seq, int32_t* out_blocks, size_t capacity) {
    kvc_bind_check(kvc_pool_block_table($self, seq, out_blocks, capacity, NULL));
  }
  void slot_mapping_into(uint64_t seq, size_t first, int64_t* out_slots, size_t n) {
    kvc_bind_check(kvc_pool_slot_mapping($self, seq, first, out_slots, n));
  }
  size_t copies_pending() {
    size_t count = 0;
    kvc_bind_check(kvc_pool_drain_copies($self, NULL, 0, &count));
    return count;
  }
  void drain_copies_into(int32_t* out_pairs, size_t capacity_pairs) {
    if (capacity_pairs == 0) return; /* nothing pending */
    kvc_bind_check(kvc_pool_drain_copies($self, out_pairs, capacity_pairs, NULL));
  }
  void allocate_blocks_into(int32_t* out_blocks, size_t n) { kvc_bind_check(kvc_pool_allocate_blocks($self, out_blocks, n)); }
  void free_blocks_raw(const int32_t* blocks, size_t n) { kvc_bind_check(kvc_pool_free_blocks($self, blocks, n)); }
  void reset_prefix_cache() { kvc_bind_check(kvc_pool_reset_prefix_cache($self)); }
  size_t events_size(kvc_event_encoding encoding) {
    size_t length = 0;
    kvc_bind_check(kvc_pool_drain_events($self, encoding, NULL, 0, &length));
    return length;
  }
  void drain_events_into(kvc_event_encoding encoding, uint8_t* out_bytes, size_t capacity) {
    kvc_bind_check(kvc_pool_drain_events($self, encoding, out_bytes, capacity, NULL));
  }
  %newobject snapshot;
  Stats* snapshot() {
    kvc_stats* stats = NULL;
    kvc_bind_check(kvc_pool_snapshot($self, &stats));
    return stats;
  }
  uint32_t num_blocks() { return kvc_pool_num_blocks($self); }
  uint32_t num_free_blocks() { return kvc_pool_num_free_blocks($self); }
  uint32_t num_blocks_in_use() { return kvc_pool_num_blocks_in_use($self); }
  uint32_t num_cached_blocks() { return kvc_pool_num_cached_blocks($self); }
  uint64_t num_sequences() { return kvc_pool_num_sequences($self); }
  double memory_efficiency() { return kvc_pool_memory_efficiency($self); }
  double window_token_hit_rate() { return kvc_pool_window_token_hit_rate($self); }
  uint64_t events_dropped() { return kvc_pool_events_dropped($self); }
  /* Bytes of one block (K and V, all layers), and the address of the pool's host or device memory
     (0 for metadata only) for the embedder's tensor library. */
  uint64_t bytes_per_block() {
    uint64_t bytes = 0;
    kvc_bind_check(kvc_pool_storage($self, NULL, &bytes));
    return bytes;
  }
  uint64_t storage_address() {
    void* base = NULL;
    kvc_bind_check(kvc_pool_storage($self, &base, NULL));
    return (uint64_t)(uintptr_t)base;
  }
  static void hash_blocks_into(kvc_hash_algo algo, const char* seed, uint32_t block_size, const int32_t* tokens,
                               size_t n, const SequenceOptions* options, uint64_t* out_hashes, size_t capacity) {
    kvc_bind_check(kvc_hash_blocks(algo, seed, block_size, tokens, n, options, out_hashes, capacity, NULL));
  }
}

/* ---- TTL cache --------------------------------------------------------------------------------- */

%rename("$ignore", regextarget=1, %$isfunction) "^kvc_ttl_";
%ignore kvc_ttl_options;
%ignore kvc_ttl_cache;
%ignore kvc_ttl_ticket;
%ignore kvc_ttl_entries;
%ignore kvc_ttl_value;
%include "kvcore/ttl.h"

/* A value whose size the caller cannot know beforehand comes back as a one-entry TtlEntries that the
   library allocated, so each lookup is one call and counts once in the statistics. A TtlLoad is one
   get-or-load: it holds either the result or the ticket that makes its holder the loader, so the
   loader runs in the calling language (a C# delegate, a Java lambda, a Go func) without a callback
   crossing the boundary. */
%{
typedef struct kvc_ttl_options TtlOptions;
typedef struct kvc_ttl_cache TtlCache;
typedef struct kvc_ttl_entries TtlEntries;
typedef struct TtlLoad {
    kvc_ttl_entries* result;  /* the value found, or another thread's load result */
    kvc_ttl_ticket* ticket;   /* non-NULL: this caller loads */
} TtlLoad;

/* A string field of an entries copy, sized then filled. */
static char* kvc_bind_entry_string(const kvc_ttl_entries* entries, size_t index,
                                   kvc_status (*read)(const kvc_ttl_entries*, size_t, char*, size_t, size_t*)) {
    size_t length = 0;
    kvc_status status = read(entries, index, NULL, 0, &length);
    if (status != KVC_OK) {
        kvc_bind_check(status);
        return NULL;
    }
    char* text = (char*)malloc(length + 1);
    if (text == NULL) {
        kvc_bind_pending = KVC_ERR_NO_MEMORY;
        return NULL;
    }
    status = read(entries, index, text, length + 1, NULL);
    if (status != KVC_OK) {
        free(text);
        kvc_bind_check(status);
        return NULL;
    }
    return text;
}
%}
KVC_BIND_HANDLE(TtlOptions)
KVC_BIND_HANDLE(TtlCache)
KVC_BIND_HANDLE(TtlEntries)
KVC_BIND_HANDLE(TtlLoad)
KVC_CLOSEABLE(TtlOptions)
KVC_CLOSEABLE(TtlCache)
KVC_CLOSEABLE(TtlEntries)
KVC_CLOSEABLE(TtlLoad)
KVC_INPUT_ARRAY(uint8_t, value, byte, byte, jbyteArray, jbyte, Byte, byte)
KVC_INTERNAL(TtlCache::set_raw)
KVC_INTERNAL(TtlCache::get_entry)
KVC_INTERNAL(TtlCache::get_all_entries)
#if defined(SWIGCSHARP)
/* Their convenience members are written in bindings/csharp/src. */
%typemap(csclassmodifiers) TtlCache "public partial class"
%typemap(csclassmodifiers) Store "public partial class"
%typemap(csclassmodifiers) Session "public partial class"
%typemap(csclassmodifiers) TtlLoad "internal class"
%typemap(csclassmodifiers) TtlEntries "internal class"
#elif defined(SWIGJAVA)
/* Used by TtlCache's own methods only. */
%typemap(javaclassmodifiers) TtlLoad "final class"
%typemap(javaclassmodifiers) TtlEntries "final class"
#endif

#if defined(SWIGJAVA)
%typemap(javacode) TtlCache %{
  /** A cache with the defaults: TTL 30 s, negative TTL 5 s, 10,000 entries, LRU. */
  public TtlCache() {
    this(null);
  }

  /** Frees the cache; using it afterwards throws KvcoreException(INVALID_STATE). */
  @Override
  public void close() {
    delete();
  }

  /** Stores value under (ns, key); valid false stores a cached failure (negative TTL). */
  public void set(String ns, String key, byte[] value, boolean valid) {
    setRaw(ns, key, value, KvcoreException.requireNonNull(value, "value").length, valid);
  }

  public void set(String ns, String key, String value) {
    set(ns, key, KvcoreException.requireNonNull(value, "value").getBytes(java.nio.charset.StandardCharsets.UTF_8), true);
  }

  /** The live entry (valid() false: a cached failure), or null on a miss. */
  public TtlEntry get(String ns, String key) {
    try (TtlEntries entry = getEntry(ns, key)) {
      return entry == null ? null : new TtlEntry(entry, 0);
    }
  }

  /**
   * The live entry, or the loader's value stored under (ns, key). Concurrent misses of one key run the
   * loader once; the others wait and get its result. A loader that throws is a failed load: the failure
   * (its message) is cached for the negative TTL and returned to the waiters with valid() false, and the
   * exception goes on to this caller, wrapped in a RuntimeException when it is checked.
   */
  public TtlEntry getOrLoad(String ns, String key, TtlLoader loader) {
    KvcoreException.requireNonNull(loader, "loader");
    try (TtlLoad load = new TtlLoad(this, ns, key)) {
      if (!load.mustLoad()) {
        return new TtlEntry(load.result(), 0);
      }
      byte[] value;
      try {
        value = loader.load();
      } catch (Exception e) {
        byte[] failure = String.valueOf(e.getMessage()).getBytes(java.nio.charset.StandardCharsets.UTF_8);
        try {
          load.finishRaw(failure, failure.length, false);
        } catch (KvcoreException ignored) {
          // The loader's exception is the one to report; closing the load fails it all the same.
        }
        if (e instanceof RuntimeException) {
          throw (RuntimeException) e;
        }
        throw new RuntimeException(e);
      }
      if (value == null) {
        value = new byte[0];
      }
      load.finishRaw(value, value.length, true);
      return new TtlEntry(ns, key, value, true);
    }
  }

  /** Copies of every live entry, sorted by (namespace, key). */
  public java.util.List<TtlEntry> getAll() {
    try (TtlEntries entries = getAllEntries()) {
      java.util.List<TtlEntry> all = new java.util.ArrayList<>();
      for (long i = 0; i < entries.count(); i++) {
        all.add(new TtlEntry(entries, i));
      }
      return all;
    }
  }
%}
#endif

/* Options for a TtlCache: TTLs, size bound, eviction policy, background cleanup, stats label. */
typedef struct {} TtlOptions;
%extend TtlOptions {
  TtlOptions() {
    kvc_ttl_options* options = NULL;
    kvc_bind_check(kvc_ttl_options_create(&options));
    return options;
  }
  ~TtlOptions() { kvc_ttl_options_destroy($self); }
  void set_ttl_ms(uint64_t ms) { kvc_bind_check(kvc_ttl_options_set_ttl_ms($self, ms)); }
  void set_negative_ttl_ms(uint64_t ms) { kvc_bind_check(kvc_ttl_options_set_negative_ttl_ms($self, ms)); }
  void set_max_entries(uint64_t entries) { kvc_bind_check(kvc_ttl_options_set_max_entries($self, entries)); }
  void set_eviction_policy(kvc_eviction_policy policy) {
    kvc_bind_check(kvc_ttl_options_set_eviction_policy($self, policy));
  }
  void set_cleanup_interval_ms(uint64_t ms) { kvc_bind_check(kvc_ttl_options_set_cleanup_interval_ms($self, ms)); }
  void set_component(const char* component) { kvc_bind_check(kvc_ttl_options_set_component($self, component)); }
}

/* A deep copy of entries (GetAll, or one lookup's result), read by index. */
%nodefaultctor TtlEntries;
typedef struct {} TtlEntries;
%extend TtlEntries {
  ~TtlEntries() { kvc_ttl_entries_destroy($self); }
  size_t count() { return kvc_ttl_entries_count($self); }
  %newobject namespace_at;
  char* namespace_at(size_t index) { return kvc_bind_entry_string($self, index, kvc_ttl_entries_namespace); }
  %newobject key_at;
  char* key_at(size_t index) { return kvc_bind_entry_string($self, index, kvc_ttl_entries_key); }
  bool valid_at(size_t index) {
    uint32_t valid = 0;
    kvc_bind_check(kvc_ttl_entries_value($self, index, NULL, 0, NULL, &valid));
    return valid != 0;
  }
  size_t value_size(size_t index) {
    size_t length = 0;
    kvc_bind_check(kvc_ttl_entries_value($self, index, NULL, 0, &length, NULL));
    return length;
  }
  void value_into(size_t index, uint8_t* out_bytes, size_t capacity) {
    if (capacity == 0) return; /* an empty value: nothing to copy */
    kvc_bind_check(kvc_ttl_entries_value($self, index, out_bytes, capacity, NULL, NULL));
  }
  uint64_t age_ms(size_t index) {
    uint64_t age = 0;
    kvc_bind_check(kvc_ttl_entries_times($self, index, &age, NULL));
    return age;
  }
  uint64_t expires_in_ms(size_t index) {
    uint64_t left = 0;
    kvc_bind_check(kvc_ttl_entries_times($self, index, NULL, &left));
    return left;
  }
}

/* A TTL cache of byte strings keyed by (namespace, key); every method may run on any thread. */
typedef struct {} TtlCache;
%extend TtlCache {
  TtlCache(const TtlOptions* options) {
    kvc_ttl_cache* cache = NULL;
    kvc_bind_check(kvc_ttl_create(options, &cache));
    return cache;
  }
  ~TtlCache() { kvc_ttl_destroy($self); }
  void set_raw(const char* ns, const char* key, const uint8_t* value, size_t n, bool valid) {
    kvc_bind_check(kvc_ttl_set($self, ns, key, value, n, valid ? 1u : 0u));
  }
  /* The live entry as a one-entry copy, or NULL on a miss. */
  %newobject get_entry;
  TtlEntries* get_entry(const char* ns, const char* key) {
    kvc_ttl_entries* entry = NULL;
    kvc_status status = kvc_ttl_get_entry($self, ns, key, &entry);
    if (status != KVC_ERR_NOT_FOUND) kvc_bind_check(status);
    return entry;
  }
  /* True when a live entry was removed. */
  bool invalidate(const char* ns, const char* key) {
    kvc_status status = kvc_ttl_invalidate($self, ns, key);
    if (status == KVC_ERR_NOT_FOUND) return false;
    kvc_bind_check(status);
    return status == KVC_OK;
  }
  void clear() { kvc_bind_check(kvc_ttl_clear($self)); }
  uint64_t size() { return kvc_ttl_size($self); }
  uint64_t cleanup() {
    uint64_t removed = 0;
    kvc_bind_check(kvc_ttl_cleanup($self, &removed));
    return removed;
  }
  %newobject get_all_entries;
  TtlEntries* get_all_entries() {
    kvc_ttl_entries* entries = NULL;
    kvc_bind_check(kvc_ttl_get_all($self, &entries));
    return entries;
  }
  %newobject snapshot;
  Stats* snapshot() {
    kvc_stats* stats = NULL;
    kvc_bind_check(kvc_ttl_snapshot($self, &stats));
    return stats;
  }
}

/* One get-or-load (see above). MustLoad() true: run the loader, then Finish(value, valid); closing it
   unfinished is a failed load. Otherwise Result() holds the value found or loaded by another thread. */
%nodefaultctor TtlLoad;
typedef struct {} TtlLoad;
%extend TtlLoad {
  TtlLoad(TtlCache* cache, const char* ns, const char* key) {
    TtlLoad* load = (TtlLoad*)calloc(1, sizeof(TtlLoad));
    if (load == NULL) {
      kvc_bind_pending = KVC_ERR_NO_MEMORY;
      return NULL;
    }
    kvc_status status = kvc_ttl_begin_load_entry(cache, ns, key, &load->result, &load->ticket);
    if (status != KVC_OK) {
      free(load);
      kvc_bind_check(status);
      return NULL;
    }
    return load;
  }
  ~TtlLoad() {
    kvc_ttl_ticket_destroy($self->ticket); /* unfinished: a failed load, so waiters never hang */
    kvc_ttl_entries_destroy($self->result);
    free($self);
  }
  bool must_load() { return $self->ticket != NULL; }
  /* The result (must_load() false); the TtlLoad keeps ownership. */
  const TtlEntries* result() { return $self->result; }
  void finish_raw(const uint8_t* value, size_t n, bool valid) {
    if ($self->ticket == NULL) {
      kvc_bind_pending = KVC_ERR_INVALID_STATE;
      return;
    }
    kvc_bind_check(kvc_ttl_ticket_finish($self->ticket, value, n, valid ? 1u : 0u));
  }
}

/* ---- session store ----------------------------------------------------------------------------- */

%rename("$ignore", regextarget=1, %$isfunction) "^kvc_(store|session)_";
%ignore kvc_store_options;
%ignore kvc_store;
%ignore kvc_session;
%include "kvcore/store.h"

%{
typedef struct kvc_store_options StoreOptions;
typedef struct kvc_store Store;
typedef struct kvc_session Session;

/* Bytes of one layer's K (or V) rows for n tokens of the session: what write_kv reads, read_kv writes. */
static size_t kvc_bind_kv_bytes(kvc_session* session, uint32_t layer, size_t first, size_t n) {
    size_t bytes = 0;
    kvc_bind_check(kvc_session_read_kv(session, layer, first, n, NULL, NULL, 0, &bytes));
    return bytes;
}
%}
KVC_BIND_HANDLE(StoreOptions)
KVC_BIND_HANDLE(Store)
KVC_BIND_HANDLE(Session)
KVC_CLOSEABLE(StoreOptions)
KVC_CLOSEABLE(Store)
KVC_CLOSEABLE(Session)
KVC_INPUT_ARRAY(float, keys, float, float, jfloatArray, jfloat, Float, float32)
KVC_INPUT_ARRAY(float, values, float, float, jfloatArray, jfloat, Float, float32)
KVC_OUTPUT_ARRAY(float, out_keys, float, float, jfloatArray, jfloat, Float, float32)
KVC_OUTPUT_ARRAY(float, out_values, float, float, jfloatArray, jfloat, Float, float32)
KVC_INPUT_ARRAY(uint8_t, key_bytes, byte, byte, jbyteArray, jbyte, Byte, byte)
KVC_INPUT_ARRAY(uint8_t, value_bytes, byte, byte, jbyteArray, jbyte, Byte, byte)
KVC_OUTPUT_ARRAY(uint8_t, out_key_bytes, byte, byte, jbyteArray, jbyte, Byte, byte)
KVC_OUTPUT_ARRAY(uint8_t, out_value_bytes, byte, byte, jbyteArray, jbyte, Byte, byte)
KVC_INTERNAL(Store::get_or_create_raw)
KVC_INTERNAL(Session::begin_turn_raw)
KVC_INTERNAL(Session::append_raw)
KVC_INTERNAL(Session::write_kv_raw)
KVC_INTERNAL(Session::read_kv_raw)
KVC_INTERNAL(Session::write_kv_bytes_raw)
KVC_INTERNAL(Session::read_kv_bytes_raw)
KVC_INTERNAL(Session::block_table_size)
KVC_INTERNAL(Session::block_table_into)
KVC_INTERNAL(Session::kv_bytes)

#if defined(SWIGJAVA)
%typemap(javacode) Store %{
  /** A store with the defaults (SmallMind's: 4096 tokens per session, 1000 sessions, 1 GiB, LRU). */
  public Store() {
    this(null);
  }

  /**
   * Frees the store; sessions still leased live until their close(), and a store attached to a Scheduler until
   * that scheduler is closed or detaches it.
   */
  @Override
  public void close() {
    delete();
  }

  /** A lease on session id, created empty if absent; close it to end the lease. maxTokens 0 = the store's bound. */
  public Session getOrCreate(String id, int layers, int kvHeads, int headDim, DType dtype, int maxTokens) {
    return getOrCreateRaw(id, layers, kvHeads, headDim, dtype, maxTokens);
  }
%}
%typemap(javacode) Session %{
  /** Ends the lease. */
  @Override
  public void close() {
    delete();
  }

  /** Starts a turn with the whole conversation; returns the tokens whose K/V are already there. */
  public long beginTurn(int[] conversation) {
    return beginTurnRaw(conversation, KvcoreException.requireNonNull(conversation, "conversation").length);
  }

  /** Adds generated tokens (decode). */
  public void append(int... tokens) {
    appendRaw(tokens, KvcoreException.requireNonNull(tokens, "tokens").length);
  }

  /** Writes one layer's K and V rows ([token][kv head][head dim], fp32) for tokens [first, first + n). */
  public void writeKv(int layer, long first, long n, float[] keys, float[] values) {
    KvcoreException.requireNonNull(keys, "keys");
    KvcoreException.requireNonNull(values, "values");
    writeKvRaw(layer, first, n, keys, keys.length, values, values.length);
  }

  /** Floats of one layer's K (or V) rows for n tokens: the size of readKv's arrays. */
  public int kvFloats(int layer, long first, long n) {
    return (int) (kvBytes(layer, first, n) / 4);
  }

  /** Reads one layer's K and V rows (fp32) for tokens [first, first + n) into keys and values. */
  public void readKv(int layer, long first, long n, float[] keys, float[] values) {
    KvcoreException.requireNonNull(keys, "keys");
    KvcoreException.requireNonNull(values, "values");
    readKvRaw(layer, first, n, keys, values, Math.min(keys.length, values.length));
  }

  /** The block table (block ids in the storage). */
  public int[] blockTable() {
    int[] blocks = new int[(int) blockTableSize()];
    blockTableInto(blocks, blocks.length);
    return blocks;
  }
%}
#endif

/* Options for a Store, with SmallMind's names and defaults (see kvcore/store.h). */
typedef struct {} StoreOptions;
%extend StoreOptions {
  StoreOptions() {
    kvc_store_options* options = NULL;
    kvc_bind_check(kvc_store_options_create(&options));
    return options;
  }
  ~StoreOptions() { kvc_store_options_destroy($self); }
  void set_enabled(bool enabled) { kvc_bind_check(kvc_store_options_set_enabled($self, enabled ? 1u : 0u)); }
  void set_max_tokens_per_session(uint32_t tokens) {
    kvc_bind_check(kvc_store_options_set_max_tokens_per_session($self, tokens));
  }
  void set_max_sessions(uint32_t sessions) { kvc_bind_check(kvc_store_options_set_max_sessions($self, sessions)); }
  void set_max_bytes_total(uint64_t bytes) { kvc_bind_check(kvc_store_options_set_max_bytes_total($self, bytes)); }
  void set_max_bytes_per_session(uint64_t bytes) {
    kvc_bind_check(kvc_store_options_set_max_bytes_per_session($self, bytes));
  }
  void set_eviction_policy(kvc_eviction_policy policy) {
    kvc_bind_check(kvc_store_options_set_eviction_policy($self, policy));
  }
  void set_persist_across_requests(bool persist) {
    kvc_bind_check(kvc_store_options_set_persist_across_requests($self, persist ? 1u : 0u));
  }
  void set_prefix_sharing(bool enabled) { kvc_bind_check(kvc_store_options_set_prefix_sharing($self, enabled ? 1u : 0u)); }
  void set_block_size(uint32_t tokens) { kvc_bind_check(kvc_store_options_set_block_size($self, tokens)); }
  void set_memory(kvc_memory memory) { kvc_bind_check(kvc_store_options_set_memory($self, memory)); }
  void set_component(const char* component) { kvc_bind_check(kvc_store_options_set_component($self, component)); }
}

/* Sessions that keep their KV between requests; every method may run on any thread. */
typedef struct {} Store;
%extend Store {
  Store(const StoreOptions* options) {
    kvc_store* store = NULL;
    kvc_bind_check(kvc_store_create(options, &store));
    return store;
  }
  /* Destroyed now, or by the last Scheduler it is attached to (see kvc_bind_store_close). */
  ~Store() { kvc_bind_store_close($self); }
  /* A lease on the session, created empty if absent. */
  %newobject get_or_create_raw;
  Session* get_or_create_raw(const char* id, uint32_t layers, uint32_t kv_heads, uint32_t head_dim, kvc_dtype dtype,
                             uint32_t max_tokens) {
    kvc_session* session = NULL;
    uint32_t created = 0;
    kvc_bind_check(kvc_store_get_or_create($self, id, layers, kv_heads, head_dim, dtype, max_tokens, &session,
                                           &created));
    return session;
  }
  /* A lease on an existing session, or NULL (a miss). */
  %newobject try_get;
  Session* try_get(const char* id) {
    kvc_session* session = NULL;
    kvc_status status = kvc_store_try_get($self, id, &session);
    if (status != KVC_ERR_NOT_FOUND) kvc_bind_check(status);
    return session;
  }
  /* True when the session was there. */
  bool remove(const char* id) {
    kvc_status status = kvc_store_remove($self, id);
    if (status == KVC_ERR_NOT_FOUND) return false;
    kvc_bind_check(status);
    return status == KVC_OK;
  }
  void clear() { kvc_bind_check(kvc_store_clear($self)); }
  uint64_t num_sessions() { return kvc_store_num_sessions($self); }
  uint64_t bytes_in_use() { return kvc_store_bytes_in_use($self); }
  uint64_t peak_bytes() { return kvc_store_peak_bytes($self); }
  %newobject snapshot;
  Stats* snapshot() {
    kvc_stats* stats = NULL;
    kvc_bind_check(kvc_store_snapshot($self, &stats));
    return stats;
  }
}

/* A lease on one session; closing it (Dispose / close / Close) releases the lease. */
%nodefaultctor Session;
typedef struct {} Session;
%extend Session {
  ~Session() { kvc_session_release($self); }
  /* Returns the reused tokens. */
  size_t begin_turn_raw(const int32_t* tokens, size_t n) {
    size_t reused = 0;
    kvc_bind_check(kvc_session_begin_turn($self, tokens, n, &reused));
    return reused;
  }
  void append_raw(const int32_t* tokens, size_t n) { kvc_bind_check(kvc_session_append_tokens($self, tokens, n)); }
  size_t kv_bytes(uint32_t layer, size_t first, size_t n) { return kvc_bind_kv_bytes($self, layer, first, n); }
  /* Managed arrays carry their lengths so that a short one is an error, never an over-read. */
  void write_kv_raw(uint32_t layer, size_t first, size_t n, const float* keys, size_t keys_len, const float* values,
                    size_t values_len) {
    size_t bytes = kvc_bind_kv_bytes($self, layer, first, n);
    if (kvc_bind_pending != KVC_OK) return;
    if (keys_len * sizeof(float) < bytes || values_len * sizeof(float) < bytes) {
      kvc_bind_pending = KVC_ERR_BUFFER_TOO_SMALL;
      return;
    }
    kvc_bind_check(kvc_session_write_kv($self, layer, first, n, keys, values));
  }
  void read_kv_raw(uint32_t layer, size_t first, size_t n, float* out_keys, float* out_values, size_t len) {
    kvc_bind_check(kvc_session_read_kv($self, layer, first, n, out_keys, out_values, len * sizeof(float), NULL));
  }
  void write_kv_bytes_raw(uint32_t layer, size_t first, size_t n, const uint8_t* key_bytes, size_t keys_len,
                          const uint8_t* value_bytes, size_t values_len) {
    size_t bytes = kvc_bind_kv_bytes($self, layer, first, n);
    if (kvc_bind_pending != KVC_OK) return;
    if (keys_len < bytes || values_len < bytes) {
      kvc_bind_pending = KVC_ERR_BUFFER_TOO_SMALL;
      return;
    }
    kvc_bind_check(kvc_session_write_kv($self, layer, first, n, key_bytes, value_bytes));
  }
  void read_kv_bytes_raw(uint32_t layer, size_t first, size_t n, uint8_t* out_key_bytes, uint8_t* out_value_bytes,
                         size_t len) {
    kvc_bind_check(kvc_session_read_kv($self, layer, first, n, out_key_bytes, out_value_bytes, len, NULL));
  }
  void commit() { kvc_bind_check(kvc_session_commit($self)); }
  size_t tokens() {
    size_t tokens = 0;
    kvc_bind_check(kvc_session_tokens($self, &tokens, NULL));
    return tokens;
  }
  size_t committed_tokens() {
    size_t committed = 0;
    kvc_bind_check(kvc_session_tokens($self, NULL, &committed));
    return committed;
  }
  size_t max_tokens() {
    size_t max_tokens = 0;
    kvc_bind_check(kvc_session_max_tokens($self, &max_tokens));
    return max_tokens;
  }
  %newobject id;
  char* id() {
    size_t length = 0;
    kvc_status status = kvc_session_id($self, NULL, 0, &length);
    if (status != KVC_OK) {
      kvc_bind_check(status);
      return NULL;
    }
    char* text = (char*)malloc(length + 1);
    if (text == NULL) {
      kvc_bind_pending = KVC_ERR_NO_MEMORY;
      return NULL;
    }
    kvc_bind_check(kvc_session_id($self, text, length + 1, NULL));
    return text;
  }
  size_t block_table_size() {
    size_t count = 0;
    kvc_bind_check(kvc_session_block_table($self, NULL, 0, &count));
    return count;
  }
  void block_table_into(int32_t* out_blocks, size_t capacity) {
    if (capacity == 0) return;
    kvc_bind_check(kvc_session_block_table($self, out_blocks, capacity, NULL));
  }
  /* The storage's address (host or device), the bytes of one block, and tokens per block. */
  uint64_t storage_address() {
    void* base = NULL;
    kvc_bind_check(kvc_session_storage($self, &base, NULL, NULL));
    return (uint64_t)(uintptr_t)base;
  }
  uint64_t bytes_per_block() {
    uint64_t bytes = 0;
    kvc_bind_check(kvc_session_storage($self, NULL, &bytes, NULL));
    return bytes;
  }
  uint32_t block_size() {
    uint32_t tokens = 0;
    kvc_bind_check(kvc_session_storage($self, NULL, NULL, &tokens));
    return tokens;
  }
}

/* ---- cluster index ----------------------------------------------------------------------------- */

/* The enums come from kvcore/index.h; its functions are bound through the classes below. */
#if defined(SWIGCSHARP) || defined(SWIGJAVA)
%rename(IndexKeyKind) kvc_index_key_kind;
%rename(IndexTier) kvc_index_tier;
%rename(IndexCounter) kvc_index_counter;
#endif
%rename("$ignore", regextarget=1, %$isfunction) "^kvc_index_";
%ignore kvc_index_options;
%ignore kvc_index;
%ignore kvc_index_lookup_result;
%include "kvcore/index.h"

/* Pod names cross as one UTF-8 byte array, each name ended by a NUL: one array per call and no
   per-string marshalling in any language; the C side points into it for the call's length. */
%{
typedef struct kvc_index_options KvIndexOptions;
typedef struct kvc_index KvIndex;
typedef struct kvc_index_lookup_result KvIndexLookup;

/* The names in bytes[0..length) (count of them, each NUL-terminated), or NULL with the status set. */
static const char** kvc_bind_names(const uint8_t* bytes, size_t length, size_t count) {
    const char** names = (const char**)malloc(count != 0 ? count * sizeof(char*) : 1);
    size_t found = 0, start = 0, i;
    if (names == NULL) {
        kvc_bind_pending = KVC_ERR_NO_MEMORY;
        return NULL;
    }
    for (i = 0; i < length; ++i) {
        if (bytes[i] != 0) continue;
        if (found < count) names[found] = (const char*)bytes + start;
        ++found;
        start = i + 1;
    }
    if (found != count || start != length) {
        free(names);
        kvc_bind_pending = KVC_ERR_INVALID_ARGUMENT; /* the wrappers refuse NUL in a name before this */
        return NULL;
    }
    return names;
}

/* Tiers cross as uint32 values; the C API checks each. */
static kvc_index_tier* kvc_bind_tiers(const uint32_t* values, size_t count) {
    kvc_index_tier* tiers = (kvc_index_tier*)malloc(count != 0 ? count * sizeof(kvc_index_tier) : 1);
    size_t i;
    if (tiers == NULL) {
        kvc_bind_pending = KVC_ERR_NO_MEMORY;
        return NULL;
    }
    for (i = 0; i < count; ++i) tiers[i] = (kvc_index_tier)values[i];
    return tiers;
}
%}
KVC_BIND_HANDLE(KvIndexOptions)
KVC_BIND_HANDLE(KvIndex)
KVC_BIND_HANDLE(KvIndexLookup)
KVC_CLOSEABLE(KvIndexOptions)
KVC_CLOSEABLE(KvIndexLookup)
KVC_INPUT_ARRAY(uint8_t, payload, byte, byte, jbyteArray, jbyte, Byte, byte)
KVC_INPUT_ARRAY(uint8_t, pod_names, byte, byte, jbyteArray, jbyte, Byte, byte)
/* Input keys are declared without const: SWIG would cast a const uint64_t* to its own name of the type
   (unsigned long long) and the C compiler would warn; JNI_ABORT and [In] still keep them read-only. */
KVC_ARRAY(, In, JNI_ABORT, uint64_t, keys, ulong, long, jlongArray, jlong, Long, uint64)
KVC_ARRAY(, In, JNI_ABORT, uint64_t, engine_keys, ulong, long, jlongArray, jlong, Long, uint64)
KVC_ARRAY(, In, JNI_ABORT, uint64_t, request_keys, ulong, long, jlongArray, jlong, Long, uint64)
KVC_INPUT_ARRAY(uint32_t, ranks, uint, int, jintArray, jint, Int, uint32)
KVC_INPUT_ARRAY(uint32_t, tiers, uint, int, jintArray, jint, Int, uint32)
KVC_OUTPUT_ARRAY(uint64_t, out_keys, ulong, long, jlongArray, jlong, Long, uint64)
KVC_OUTPUT_ARRAY(uint64_t, out_counters, ulong, long, jlongArray, jlong, Long, uint64)
KVC_OUTPUT_ARRAY(double, out_scores, double, double, jdoubleArray, jdouble, Double, float64)
KVC_OUTPUT_ARRAY(uint32_t, out_run_blocks, uint, int, jintArray, jint, Int, uint32)
KVC_INTERNAL(KvIndex::apply_batch_raw)
KVC_INTERNAL(KvIndex::submit_batch_raw)
KVC_INTERNAL(KvIndex::request_keys_size)
KVC_INTERNAL(KvIndex::request_keys_into)
KVC_INTERNAL(KvIndex::score_tokens_raw)
KVC_INTERNAL(KvIndex::score_keys_raw)
KVC_INTERNAL(KvIndex::lookup_raw)
KVC_INTERNAL(KvIndex::add_raw)
KVC_INTERNAL(KvIndex::evict_raw)
KVC_INTERNAL(KvIndex::add_speculative_raw)
KVC_INTERNAL(KvIndex::remove_speculative_raw)
KVC_INTERNAL(KvIndex::counters_into)
#if defined(SWIGCSHARP)
/* Its convenience members are written in bindings/csharp/src/KvIndex.cs. */
%typemap(csclassmodifiers) KvIndex "public partial class"
%typemap(csclassmodifiers) KvIndexLookup "internal class"
#elif defined(SWIGJAVA)
%typemap(javaclassmodifiers) KvIndexLookup "final class"
%typemap(javainterfaces) KvIndex "AutoCloseable"
%typemap(javacode) KvIndex %{
  /** An index with the defaults (xxh3 request keys seeded "42", 16-token blocks, mapped engine keys). */
  public KvIndex() {
    this(null);
  }

  /** Frees the index (applying queued batches first); using it afterwards throws KvcoreException(INVALID_STATE). */
  @Override
  public void close() {
    delete();
  }

  /** Applies one vLLM EventBatch (msgpack) published by pod for model, whole or not at all. */
  public void applyBatch(String pod, String model, byte[] payload) {
    applyBatchRaw(pod, model, payload, KvcoreException.requireNonNull(payload, "payload").length);
  }

  /** Queues the batch on the pod's ingest thread (options with ingest threads only). */
  public void submitBatch(String pod, String model, byte[] payload) {
    submitBatchRaw(pod, model, payload, KvcoreException.requireNonNull(payload, "payload").length);
  }

  /** The prompt's request keys (unsigned 64-bit values in a long[]): one per full block. options may be null. */
  public long[] requestKeys(int[] tokens, SequenceOptions options) {
    KvcoreException.requireNonNull(tokens, "tokens");
    long[] keys = new long[(int) requestKeysSize(tokens, tokens.length, options)];
    requestKeysInto(tokens, tokens.length, options, keys, keys.length);
    return keys;
  }

  public long[] requestKeys(int[] tokens) {
    return requestKeys(tokens, null);
  }

  /** Scores each candidate pod (in order; unknown pods score 0) for a prompt of model. options may be null. */
  public PodScore[] scoreTokens(String model, int[] tokens, java.util.List<String> pods, SequenceOptions options) {
    KvcoreException.requireNonNull(tokens, "tokens");
    byte[] names = names(pods);
    double[] scores = new double[pods.size()];
    int[] blocks = new int[pods.size()];
    scoreTokensRaw(model, tokens, tokens.length, options, names, names.length, pods.size(), scores, blocks);
    return scores(pods, scores, blocks);
  }

  public PodScore[] scoreTokens(String model, int[] tokens, java.util.List<String> pods) {
    return scoreTokens(model, tokens, pods, null);
  }

  /** The same for keys already computed (request keys; or engine keys of orphan blocks). */
  public PodScore[] scoreKeys(String model, long[] keys, IndexKeyKind kind, java.util.List<String> pods) {
    KvcoreException.requireNonNull(keys, "keys");
    byte[] names = names(pods);
    double[] scores = new double[pods.size()];
    int[] blocks = new int[pods.size()];
    scoreKeysRaw(model, keys, keys.length, kind, names, names.length, pods.size(), scores, blocks);
    return scores(pods, scores, blocks);
  }

  /** Pod -> score for a prompt of model (the scorer a router calls). */
  public java.util.Map<String, Double> score(String model, int[] tokens, java.util.List<String> pods) {
    java.util.Map<String, Double> byPod = new java.util.LinkedHashMap<>();
    for (PodScore s : scoreTokens(model, tokens, pods)) {
      byPod.put(s.pod(), s.score());
    }
    return byPod;
  }

  /**
   * llm-d's Lookup: for keys in order, the holders of each among pods (null or empty: every pod), up to
   * the first key that none holds.
   */
  public java.util.List<java.util.List<PodEntry>> lookup(String model, long[] keys, IndexKeyKind kind,
                                                         java.util.List<String> pods) {
    KvcoreException.requireNonNull(keys, "keys");
    byte[] names = names(pods);
    try (KvIndexLookup found = lookupRaw(model, keys, keys.length, kind, names, names.length,
                                         pods == null ? 0 : pods.size())) {
      java.util.List<java.util.List<PodEntry>> perKey = new java.util.ArrayList<>();
      for (long k = 0; k < found.keysFound(); k++) {
        java.util.List<PodEntry> holders = new java.util.ArrayList<>();
        for (long h = 0; h < found.holders(k); h++) {
          holders.add(new PodEntry(found.pod(k, h), found.tier(k, h), found.rank(k, h), found.speculative(k, h)));
        }
        perKey.add(holders);
      }
      return perKey;
    }
  }

  public java.util.List<java.util.List<PodEntry>> lookup(String model, long[] keys) {
    return lookup(model, keys, IndexKeyKind.REQUEST, null);
  }

  /**
   * llm-d's Add: every entry holds each request key, and each entry's pod maps engineKeys to them (null
   * or empty: none; the same count 1:1; a multiple of it many:1; a divisor of it 1:many). Speculative
   * entries are routing decisions (addSpeculative with the default TTL; rank 0 and GPU only).
   */
  public void add(String model, long[] engineKeys, long[] requestKeys, PodEntry... entries) {
    KvcoreException.requireNonNull(requestKeys, "requestKeys");
    KvcoreException.requireNonNull(entries, "entries");
    long[] engine = engineKeys == null ? new long[0] : engineKeys;
    java.util.List<PodEntry> confirmed = new java.util.ArrayList<>();
    for (PodEntry e : entries) {
      KvcoreException.requireNonNull(e, "entry");
      if (!e.speculative()) {
        confirmed.add(e);
      } else if (e.rank() != 0 || e.tier() != IndexTier.GPU) {
        throw new KvcoreException(Status.INVALID_ARGUMENT.swigValue(), "a speculative entry is rank 0 on the GPU");
      }
    }
    if (!confirmed.isEmpty() || entries.length == 0) {
      byte[] names = names(pods(confirmed));
      addRaw(model, engine, engine.length, requestKeys, requestKeys.length, names, names.length, ranks(confirmed),
             tiers(confirmed), confirmed.size());
    }
    for (PodEntry e : entries) {
      if (e.speculative()) {
        addSpeculative(model, requestKeys, e.pod(), 0);
      }
    }
  }

  /**
   * llm-d's Evict: removes the entries from one key (REQUEST: the key; ENGINE: resolved through each
   * pod's mapping). A speculative entry withdraws that pod's routing decision (REQUEST keys only).
   */
  public void evict(String model, long key, IndexKeyKind kind, PodEntry... entries) {
    KvcoreException.requireNonNull(entries, "entries");
    java.util.List<PodEntry> confirmed = new java.util.ArrayList<>();
    for (PodEntry e : entries) {
      if (!KvcoreException.requireNonNull(e, "entry").speculative()) {
        confirmed.add(e);
      }
    }
    if (!confirmed.isEmpty() || entries.length == 0) {
      byte[] names = names(pods(confirmed));
      evictRaw(model, key, kind, names, names.length, ranks(confirmed), tiers(confirmed), confirmed.size());
    }
    if (kind != IndexKeyKind.REQUEST) {
      return;  // routing decisions hold request keys only
    }
    for (PodEntry e : entries) {
      if (e.speculative()) {
        removeSpeculative(model, new long[] {key}, e.pod());
      }
    }
  }

  /** A routing decision: pod holds model's request keys for ttlMs (0: the options' TTL) or until its event. */
  public void addSpeculative(String model, long[] keys, String pod, long ttlMs) {
    addSpeculativeRaw(model, keys, KvcoreException.requireNonNull(keys, "keys").length, pod, ttlMs);
  }

  /** Withdraws a routing decision: pod's speculative holders of the keys go. */
  public void removeSpeculative(String model, long[] keys, String pod) {
    removeSpeculativeRaw(model, keys, KvcoreException.requireNonNull(keys, "keys").length, pod);
  }

  /** The index's counters by name ("keys", "holders", "batches_applied", ...), in the C API's order. */
  public java.util.Map<String, Long> counters() {
    return Counters.byName(counterCount(), this::countersInto, KvIndex::counterName);
  }

  // Pod names as the native layer takes them: UTF-8, each ended by a NUL.
  private static byte[] names(java.util.List<String> pods) {
    java.io.ByteArrayOutputStream bytes = new java.io.ByteArrayOutputStream();
    if (pods == null) {
      return bytes.toByteArray();
    }
    for (String pod : pods) {
      if (KvcoreException.requireNonNull(pod, "pod").indexOf('\0') >= 0) {
        throw new KvcoreException(Status.INVALID_ARGUMENT.swigValue(), "a pod name contains NUL");
      }
      byte[] name = pod.getBytes(java.nio.charset.StandardCharsets.UTF_8);
      bytes.write(name, 0, name.length);
      bytes.write(0);
    }
    return bytes.toByteArray();
  }

  private static PodScore[] scores(java.util.List<String> pods, double[] scores, int[] blocks) {
    PodScore[] all = new PodScore[scores.length];
    for (int i = 0; i < all.length; i++) {
      all[i] = new PodScore(pods.get(i), scores[i], blocks[i]);
    }
    return all;
  }

  private static java.util.List<String> pods(java.util.List<PodEntry> entries) {
    java.util.List<String> pods = new java.util.ArrayList<>();
    for (PodEntry e : entries) {
      pods.add(e.pod());
    }
    return pods;
  }

  private static int[] ranks(java.util.List<PodEntry> entries) {
    int[] ranks = new int[entries.size()];
    for (int i = 0; i < ranks.length; i++) {
      ranks[i] = entries.get(i).rank();
    }
    return ranks;
  }

  private static int[] tiers(java.util.List<PodEntry> entries) {
    int[] tiers = new int[entries.size()];
    for (int i = 0; i < tiers.length; i++) {
      tiers[i] = entries.get(i).tier().swigValue();
    }
    return tiers;
  }
%}
#endif

/* Options for a KvIndex: request-key hash, direct engine keys, shards, byte budget, tier weights, ... */
typedef struct {} KvIndexOptions;
%extend KvIndexOptions {
  KvIndexOptions() {
    kvc_index_options* options = NULL;
    kvc_bind_check(kvc_index_options_create(&options));
    return options;
  }
  ~KvIndexOptions() { kvc_index_options_destroy($self); }
  void set_hash(kvc_hash_algo algo, const char* seed) { kvc_bind_check(kvc_index_options_set_hash($self, algo, seed)); }
  void set_block_size(uint32_t tokens) { kvc_bind_check(kvc_index_options_set_block_size($self, tokens)); }
  void set_engine_keys_direct(bool enabled) {
    kvc_bind_check(kvc_index_options_set_engine_keys_direct($self, enabled ? 1u : 0u));
  }
  void set_shards(uint32_t shards) { kvc_bind_check(kvc_index_options_set_shards($self, shards)); }
  void set_byte_budget(uint64_t bytes) { kvc_bind_check(kvc_index_options_set_byte_budget($self, bytes)); }
  void set_max_orphan_blocks(uint32_t blocks) { kvc_bind_check(kvc_index_options_set_max_orphan_blocks($self, blocks)); }
  void set_tier_weight(kvc_index_tier tier, double weight) {
    kvc_bind_check(kvc_index_options_set_tier_weight($self, tier, weight));
  }
  void set_speculative_ttl_ms(uint64_t ttl_ms) { kvc_bind_check(kvc_index_options_set_speculative_ttl_ms($self, ttl_ms)); }
  void set_ingest_threads(uint32_t threads, uint32_t queue_capacity) {
    kvc_bind_check(kvc_index_options_set_ingest_threads($self, threads, queue_capacity));
  }
  /* max_entries 0: off (the default). */
  void set_score_cache(uint32_t max_entries, uint64_t ttl_ms, uint32_t max_pod_sets_per_prompt) {
    kvc_bind_check(kvc_index_options_set_score_cache($self, max_entries, ttl_ms, max_pod_sets_per_prompt));
  }
  /* Entries shared with other routers in a Redis/Valkey server; "" keeps them in this process. */
  void set_redis(const char* url) { kvc_bind_check(kvc_index_options_set_redis($self, url)); }
  void set_redis_key_ttl_ms(uint64_t ttl_ms) { kvc_bind_check(kvc_index_options_set_redis_key_ttl_ms($self, ttl_ms)); }
  void set_redis_key_prefix(const char* prefix) { kvc_bind_check(kvc_index_options_set_redis_key_prefix($self, prefix)); }
}

/* One lookup's copy: per found key, its holders. */
%nodefaultctor KvIndexLookup;
typedef struct {} KvIndexLookup;
%extend KvIndexLookup {
  ~KvIndexLookup() { kvc_index_lookup_result_destroy($self); }
  size_t keys_found() { return kvc_index_lookup_result_keys_found($self); }
  size_t holders(size_t key) {
    size_t count = 0;
    kvc_bind_check(kvc_index_lookup_result_holders($self, key, &count));
    return count;
  }
  const char* pod(size_t key, size_t h) {
    const char* pod = NULL;
    kvc_bind_check(kvc_index_lookup_result_holder($self, key, h, &pod, NULL, NULL, NULL));
    return pod;
  }
  uint32_t rank(size_t key, size_t h) {
    uint32_t rank = 0;
    kvc_bind_check(kvc_index_lookup_result_holder($self, key, h, NULL, &rank, NULL, NULL));
    return rank;
  }
  kvc_index_tier tier(size_t key, size_t h) {
    kvc_index_tier tier = KVC_INDEX_TIER_GPU;
    kvc_bind_check(kvc_index_lookup_result_holder($self, key, h, NULL, NULL, &tier, NULL));
    return tier;
  }
  bool speculative(size_t key, size_t h) {
    uint32_t speculative = 0;
    kvc_bind_check(kvc_index_lookup_result_holder($self, key, h, NULL, NULL, NULL, &speculative));
    return speculative != 0;
  }
}

/* The cluster KV-block index; every method may run on any thread (see kvcore/index.h). */
typedef struct {} KvIndex;
%extend KvIndex {
  KvIndex(const KvIndexOptions* options) {
    kvc_index* index = NULL;
    kvc_bind_check(kvc_index_create(options, &index));
    return index;
  }
  ~KvIndex() { kvc_index_destroy($self); }
  void apply_batch_raw(const char* pod, const char* model, const uint8_t* payload, size_t n) {
    kvc_bind_check(kvc_index_apply_batch($self, pod, model, payload, n));
  }
  void submit_batch_raw(const char* pod, const char* model, const uint8_t* payload, size_t n) {
    kvc_bind_check(kvc_index_submit_batch($self, pod, model, payload, n));
  }
  void flush() { kvc_bind_check(kvc_index_flush($self)); }
  size_t request_keys_size(const int32_t* tokens, size_t n, const SequenceOptions* options) {
    size_t count = 0;
    kvc_bind_check(kvc_index_request_keys($self, tokens, n, options, NULL, 0, &count));
    return count;
  }
  void request_keys_into(const int32_t* tokens, size_t n, const SequenceOptions* options, uint64_t* out_keys,
                         size_t capacity) {
    if (capacity == 0) return; /* no full block */
    kvc_bind_check(kvc_index_request_keys($self, tokens, n, options, out_keys, capacity, NULL));
  }
  /* out_scores and out_run_blocks hold num_pods values. */
  void score_tokens_raw(const char* model, const int32_t* tokens, size_t n, const SequenceOptions* options,
                        const uint8_t* pod_names, size_t names_length, size_t num_pods, double* out_scores,
                        uint32_t* out_run_blocks) {
    const char** pods = kvc_bind_names(pod_names, names_length, num_pods);
    if (pods == NULL) return;
    kvc_bind_check(kvc_index_score_tokens($self, model, tokens, n, options, pods, num_pods, out_scores, out_run_blocks));
    free((void*)pods);
  }
  void score_keys_raw(const char* model, uint64_t* keys, size_t n, kvc_index_key_kind kind,
                      const uint8_t* pod_names, size_t names_length, size_t num_pods, double* out_scores,
                      uint32_t* out_run_blocks) {
    const char** pods = kvc_bind_names(pod_names, names_length, num_pods);
    if (pods == NULL) return;
    kvc_bind_check(kvc_index_score_keys($self, model, keys, n, kind, pods, num_pods, out_scores, out_run_blocks));
    free((void*)pods);
  }
  %newobject lookup_raw;
  KvIndexLookup* lookup_raw(const char* model, uint64_t* keys, size_t n, kvc_index_key_kind kind,
                            const uint8_t* pod_names, size_t names_length, size_t num_pods) {
    kvc_index_lookup_result* result = NULL;
    const char** pods = kvc_bind_names(pod_names, names_length, num_pods);
    if (pods == NULL) return NULL;
    kvc_bind_check(kvc_index_lookup($self, model, keys, n, kind, pods, num_pods, &result));
    free((void*)pods);
    return result;
  }
  void add_raw(const char* model, uint64_t* engine_keys, size_t num_engine_keys, uint64_t* request_keys,
               size_t num_request_keys, const uint8_t* pod_names, size_t names_length, const uint32_t* ranks,
               const uint32_t* tiers, size_t num_entries) {
    const char** pods = kvc_bind_names(pod_names, names_length, num_entries);
    kvc_index_tier* tier_values = pods != NULL ? kvc_bind_tiers(tiers, num_entries) : NULL;
    if (tier_values != NULL)
      kvc_bind_check(kvc_index_add($self, model, engine_keys, num_engine_keys, request_keys, num_request_keys, pods,
                                   ranks, tier_values, num_entries));
    free(tier_values);
    free((void*)pods);
  }
  void evict_raw(const char* model, uint64_t key, kvc_index_key_kind kind, const uint8_t* pod_names,
                 size_t names_length, const uint32_t* ranks, const uint32_t* tiers, size_t num_entries) {
    const char** pods = kvc_bind_names(pod_names, names_length, num_entries);
    kvc_index_tier* tier_values = pods != NULL ? kvc_bind_tiers(tiers, num_entries) : NULL;
    if (tier_values != NULL)
      kvc_bind_check(kvc_index_evict($self, model, key, kind, pods, ranks, tier_values, num_entries));
    free(tier_values);
    free((void*)pods);
  }
  void add_speculative_raw(const char* model, uint64_t* keys, size_t n, const char* pod, uint64_t ttl_ms) {
    kvc_bind_check(kvc_index_add_speculative($self, model, keys, n, pod, ttl_ms));
  }
  void remove_speculative_raw(const char* model, uint64_t* keys, size_t n, const char* pod) {
    kvc_bind_check(kvc_index_remove_speculative($self, model, keys, n, pod));
  }
  void expire_speculative() { kvc_bind_check(kvc_index_expire_speculative($self)); }
  /* The engine's AllBlocksCleared for (pod, model, rank); false for an unknown pod. */
  bool clear(const char* pod, const char* model, uint32_t rank) {
    kvc_status status = kvc_index_clear($self, pod, model, rank);
    if (status == KVC_ERR_NOT_FOUND) return false;
    kvc_bind_check(status);
    return status == KVC_OK;
  }
  /* Forgets the pod and all its entries; false for an unknown pod. */
  bool remove_pod(const char* pod) {
    kvc_status status = kvc_index_remove_pod($self, pod);
    if (status == KVC_ERR_NOT_FOUND) return false;
    kvc_bind_check(status);
    return status == KVC_OK;
  }
  static size_t counter_count() { return KVC_INDEX_COUNTER_COUNT; }
  static const char* counter_name(uint32_t counter) { return kvc_index_counter_name((kvc_index_counter)counter); }
  static const char* tier_name(kvc_index_tier tier) { return kvc_index_tier_name(tier); }
  void counters_into(uint64_t* out_counters, size_t capacity) {
    kvc_bind_check(kvc_index_counters($self, out_counters, capacity, NULL));
  }
}

/* ---- index subscriber -------------------------------------------------------------------------- */

/* kvcore/index_subscriber.h: its functions (already ignored by the ^kvc_index_ rule) through the classes
   below; counters by name, so the enum stays out. A subscriber keeps its index alive at the C level, so
   the garbage collectors may finalize the two in any order. */
%ignore kvc_index_subscriber_options;
%ignore kvc_index_subscriber;
%ignore kvc_index_subscriber_counter;
%include "kvcore/index_subscriber.h"
%{
typedef struct kvc_index_subscriber_options KvIndexSubscriberOptions;
typedef struct kvc_index_subscriber KvIndexSubscriber;
KVC_BIND_EXPORTER(kvc_bind_export_subscriber, kvc_index_subscriber)
%}
KVC_BIND_HANDLE(KvIndexSubscriberOptions)
KVC_BIND_HANDLE(KvIndexSubscriber)
KVC_CLOSEABLE(KvIndexSubscriberOptions)
/* The index a subscriber feeds: a closed one (a NULL handle) is refused before the C call. */
%typemap(check) KvIndex* index {
  if ($1 == NULL) {
    KVC_BIND_RAISE(KVC_ERR_INVALID_STATE, "the index has been closed")
  }
}
#if defined(SWIGJAVA)
%typemap(javainterfaces) KvIndexSubscriber "AutoCloseable"
%typemap(javacode) KvIndexSubscriber %{
  /** Stops the subscriber and frees it; using it afterwards throws KvcoreException(INVALID_STATE). */
  @Override
  public void close() {
    delete();
  }

  /** The subscriber's counters by name ("messages", "gaps", "batches_applied", ...), in the C API's order. */
  public java.util.Map<String, Long> counters() {
    return Counters.byName(counterCount(), this::countersInto, KvIndexSubscriber::counterName);
  }
%}
#endif
KVC_INTERNAL(KvIndexSubscriber::counters_into)
KVC_INTERNAL(KvIndexSubscriber::counter_count)
KVC_INTERNAL(KvIndexSubscriber::counter_name)
#if defined(SWIGCSHARP)
/* Its convenience members are written in bindings/csharp/src/KvIndexSubscriber.cs. */
%typemap(csclassmodifiers) KvIndexSubscriber "public partial class"
#endif

/* Where the subscriber listens: a bind endpoint (engines connect to it) and/or engines to connect to. */
typedef struct {} KvIndexSubscriberOptions;
%extend KvIndexSubscriberOptions {
  KvIndexSubscriberOptions() {
    kvc_index_subscriber_options* options = NULL;
    kvc_bind_check(kvc_index_subscriber_options_create(&options));
    return options;
  }
  ~KvIndexSubscriberOptions() { kvc_index_subscriber_options_destroy($self); }
  void set_bind(const char* endpoint) { kvc_bind_check(kvc_index_subscriber_options_set_bind($self, endpoint)); }
  /* replay_endpoint may be NULL (null / "") for none. */
  void add_engine(const char* endpoint, const char* replay_endpoint) {
    kvc_bind_check(kvc_index_subscriber_options_add_engine($self, endpoint, replay_endpoint));
  }
  void set_pod_replay(const char* pod, const char* replay_endpoint) {
    kvc_bind_check(kvc_index_subscriber_options_set_pod_replay($self, pod, replay_endpoint));
  }
  void set_replay_timeout_ms(uint32_t timeout_ms) {
    kvc_bind_check(kvc_index_subscriber_options_set_replay_timeout_ms($self, timeout_ms));
  }
}

/* Feeds a KvIndex from engines' KV events over ZeroMQ on its own thread (see kvcore/index_subscriber.h). */
typedef struct {} KvIndexSubscriber;
%extend KvIndexSubscriber {
  KvIndexSubscriber(KvIndex* index, const KvIndexSubscriberOptions* options) {
    kvc_index_subscriber* subscriber = NULL;
    kvc_bind_check(kvc_index_subscriber_create(index, options, &subscriber));
    return subscriber;
  }
  ~KvIndexSubscriber() { kvc_index_subscriber_destroy($self); }
  void start() { kvc_bind_check(kvc_index_subscriber_start($self)); }
  void stop() { kvc_bind_check(kvc_index_subscriber_stop($self)); }
  /* The bind endpoint as bound (port 0 resolved); "" before start or without bind mode. */
  %newobject bound_endpoint;
  char* bound_endpoint() { return kvc_bind_export_subscriber($self, kvc_index_subscriber_bound_endpoint); }
  static size_t counter_count() { return KVC_INDEX_SUBSCRIBER_COUNTER_COUNT; }
  static const char* counter_name(uint32_t counter) {
    return kvc_index_subscriber_counter_name((kvc_index_subscriber_counter)counter);
  }
  void counters_into(uint64_t* out_counters, size_t capacity) {
    kvc_bind_check(kvc_index_subscriber_counters($self, out_counters, capacity, NULL));
  }
}

/* ---- event publisher --------------------------------------------------------------------------- */

/* kvcore/event_publisher.h: an engine's KV events over ZeroMQ as vLLM publishes them; functions through
   the classes below, counters by name. */
%rename("$ignore", regextarget=1, %$isfunction) "^kvc_event_publisher_";
%ignore kvc_event_publisher_options;
%ignore kvc_event_publisher;
%ignore kvc_event_publisher_counter;
%include "kvcore/event_publisher.h"
%{
typedef struct kvc_event_publisher_options EventPublisherOptions;
typedef struct kvc_event_publisher EventPublisher;
KVC_BIND_EXPORTER(kvc_bind_export_publisher, kvc_event_publisher)
%}
KVC_BIND_HANDLE(EventPublisherOptions)
KVC_BIND_HANDLE(EventPublisher)
KVC_CLOSEABLE(EventPublisherOptions)
/* The pool whose events are published: a closed one is refused before the C call. */
%typemap(check) Pool* pool {
  if ($1 == NULL) {
    KVC_BIND_RAISE(KVC_ERR_INVALID_STATE, "the pool has been closed")
  }
}
KVC_INTERNAL(EventPublisher::publish_raw)
KVC_INTERNAL(EventPublisher::publish_pool_raw)
KVC_INTERNAL(EventPublisher::counters_into)
KVC_INTERNAL(EventPublisher::counter_count)
KVC_INTERNAL(EventPublisher::counter_name)
#if defined(SWIGCSHARP)
/* Its convenience members are written in bindings/csharp/src/EventPublisher.cs. */
%typemap(csclassmodifiers) EventPublisher "public partial class"
#elif defined(SWIGJAVA)
%typemap(javainterfaces) EventPublisher "AutoCloseable"
%typemap(javacode) EventPublisher %{
  /** Closes the sockets (waiting up to 250 ms for queued batches) and frees the publisher. */
  @Override
  public void close() {
    delete();
  }

  /** Sends one msgpack EventBatch as the next seq, which it returns (0, 1, 2, ...). */
  public long publish(byte[] payload) {
    return publishRaw(payload, KvcoreException.requireNonNull(payload, "payload").length);
  }

  /** Drains the pool's pending events and publishes them as one batch: its seq, or -1 when none were pending
   * (nothing sent). Call it on the pool's thread. */
  public long publishPool(Pool pool, EventEncoding encoding) {
    return publishPoolRaw(KvcoreException.requireNonNull(pool, "pool"), encoding);
  }

  /** The publisher's counters by name ("published", "replay_requests", ...), in the C API's order. */
  public java.util.Map<String, Long> counters() {
    return Counters.byName(counterCount(), this::countersInto, EventPublisher::counterName);
  }
%}
#endif

/* Where and how the publisher sends: vLLM's defaults (bind every interface on port 5557, no replay). */
typedef struct {} EventPublisherOptions;
%extend EventPublisherOptions {
  EventPublisherOptions() {
    kvc_event_publisher_options* options = NULL;
    kvc_bind_check(kvc_event_publisher_options_create(&options));
    return options;
  }
  ~EventPublisherOptions() { kvc_event_publisher_options_destroy($self); }
  /* connect false binds the PUB; true connects it to a router that binds. */
  void set_endpoint(const char* endpoint, bool connect) {
    kvc_bind_check(kvc_event_publisher_options_set_endpoint($self, endpoint, connect ? 1u : 0u));
  }
  /* "" for none. */
  void set_replay_endpoint(const char* endpoint) {
    kvc_bind_check(kvc_event_publisher_options_set_replay_endpoint($self, endpoint));
  }
  void set_topic(const char* topic) { kvc_bind_check(kvc_event_publisher_options_set_topic($self, topic)); }
  void set_buffer_steps(uint32_t steps) { kvc_bind_check(kvc_event_publisher_options_set_buffer_steps($self, steps)); }
}

/* An engine's KV event publisher: a ZeroMQ PUB and a replay ROUTER (see kvcore/event_publisher.h). */
typedef struct {} EventPublisher;
%extend EventPublisher {
  EventPublisher(const EventPublisherOptions* options) {
    kvc_event_publisher* publisher = NULL;
    kvc_bind_check(kvc_event_publisher_create(options, &publisher));
    return publisher;
  }
  ~EventPublisher() { kvc_event_publisher_destroy($self); }
  /* llm-d's topic kv@<pod>@<model>. */
  %newobject topic;
  static char* topic(const char* pod, const char* model) {
    size_t length = 0;
    char* text;
    kvc_status status = kvc_event_publisher_topic(pod, model, NULL, 0, &length);
    if (status != KVC_OK) {
      kvc_bind_check(status);
      return NULL;
    }
    text = (char*)malloc(length + 1);
    if (text == NULL) {
      kvc_bind_pending = KVC_ERR_NO_MEMORY;
      return NULL;
    }
    kvc_bind_check(kvc_event_publisher_topic(pod, model, text, length + 1, NULL));
    return text;
  }
  uint64_t publish_raw(const uint8_t* payload, size_t n) {
    uint64_t seq = 0;
    kvc_bind_check(kvc_event_publisher_publish($self, payload, n, &seq));
    return seq;
  }
  /* The batch's seq, or -1 when no events were pending (nothing sent). */
  int64_t publish_pool_raw(Pool* pool, kvc_event_encoding encoding) {
    uint64_t seq = 0;
    uint32_t events = 0;
    kvc_status status = kvc_event_publisher_publish_pool($self, pool, encoding, &seq, &events);
    kvc_bind_check(status);
    return status == KVC_OK && events != 0 ? (int64_t)seq : -1;
  }
  /* The PUB endpoint as bound (port 0 resolved). */
  %newobject endpoint;
  char* endpoint() { return kvc_bind_export_publisher($self, kvc_event_publisher_endpoint); }
  /* The replay ROUTER's endpoint as bound; "" without replay. */
  %newobject replay_endpoint;
  char* replay_endpoint() { return kvc_bind_export_publisher($self, kvc_event_publisher_replay_endpoint); }
  static size_t counter_count() { return KVC_EVENT_PUBLISHER_COUNTER_COUNT; }
  static const char* counter_name(uint32_t counter) {
    return kvc_event_publisher_counter_name((kvc_event_publisher_counter)counter);
  }
  void counters_into(uint64_t* out_counters, size_t capacity) {
    kvc_bind_check(kvc_event_publisher_counters($self, out_counters, capacity, NULL));
  }
}

/* ---- ops: KV kernels on the CPU ---------------------------------------------------------------- */

/* A KvLayout is the kvc_kv_layout with the shape and strides it was given, so that the binding can check
   a managed array's length against the memory the layout describes before the C call trusts it. The
   operations take their caches in three forms: float[] (an F32 layout), byte[] (any dtype) and raw
   addresses (the pool's host storage, a tensor library's memory: their extent is the caller's word). */
%{
typedef struct KvLayout {
    kvc_kv_layout* layout;
    uint32_t layers, num_blocks, kv_heads, head_dim;
    uint64_t block_stride, layer_stride; /* as set; 0 = packed */
} KvLayout;

#define KVC_BIND_UNCHECKED UINT64_MAX /* a raw address */

/* Bytes from a cache's base to the end of its last block of its last layer (the header's formula). */
static uint64_t kvc_bind_cache_bytes(const KvLayout* l) {
    uint64_t block = kvc_kv_layout_block_bytes(l->layout);
    uint64_t block_stride = l->block_stride != 0 ? l->block_stride : block;
    uint64_t layer_stride = l->layer_stride != 0 ? l->layer_stride : (uint64_t)l->num_blocks * block_stride;
    return (uint64_t)(l->layers - 1) * layer_stride + (uint64_t)(l->num_blocks - 1) * block_stride + block;
}

static int kvc_bind_require(int condition, const char* message) {
    if (!condition) kvc_bind_fail(KVC_ERR_INVALID_ARGUMENT, message);
    return condition;
}

static int kvc_bind_layout_ok(const KvLayout* l) {
    if (l == NULL) kvc_bind_fail(KVC_ERR_INVALID_STATE, "the layout is null or has been closed");
    return l != NULL;
}

static int kvc_bind_caches_fit(const KvLayout* l, uint64_t k_bytes, uint64_t v_bytes) {
    uint64_t need = kvc_bind_cache_bytes(l);
    return kvc_bind_require(k_bytes >= need && v_bytes >= need,
                            "a K or V cache array is shorter than its layout (KvLayout cache_bytes)");
}

static uint64_t kvc_bind_row(const KvLayout* l) { return (uint64_t)l->kv_heads * l->head_dim; }

static void kvc_bind_write(const KvLayout* l, uint32_t layer, void* k, uint64_t k_bytes, void* v, uint64_t v_bytes,
                           const float* key_rows, size_t key_len, const float* value_rows, size_t value_len,
                           const int64_t* slots, size_t n) {
    if (!kvc_bind_caches_fit(l, k_bytes, v_bytes) ||
        !kvc_bind_require(key_len == n * kvc_bind_row(l) && value_len == n * kvc_bind_row(l),
                          "keys and values must hold slots.length * kv_heads * head_dim floats"))
        return;
    kvc_bind_check(kvc_kv_write(l->layout, layer, k, v, key_rows, value_rows, KVC_DTYPE_F32, slots, n));
}

static void kvc_bind_copy(const KvLayout* l, void* k, uint64_t k_bytes, void* v, uint64_t v_bytes,
                          const int32_t* pairs, size_t pairs_len) {
    if (!kvc_bind_caches_fit(l, k_bytes, v_bytes) ||
        !kvc_bind_require(pairs_len % 2 == 0, "pairs holds (src, dst) pairs: an even length"))
        return;
    kvc_bind_check(kvc_kv_copy_blocks(l->layout, k, v, pairs, pairs_len / 2));
}

static void kvc_bind_swap(const KvLayout* src_layout, const void* src_k, uint64_t src_k_bytes, const void* src_v,
                          uint64_t src_v_bytes, const KvLayout* dst_layout, void* dst_k, uint64_t dst_k_bytes,
                          void* dst_v, uint64_t dst_v_bytes, const int32_t* pairs, size_t pairs_len) {
    if (!kvc_bind_layout_ok(dst_layout) || !kvc_bind_caches_fit(src_layout, src_k_bytes, src_v_bytes) ||
        !kvc_bind_caches_fit(dst_layout, dst_k_bytes, dst_v_bytes) ||
        !kvc_bind_require(pairs_len % 2 == 0, "pairs holds (src, dst) pairs: an even length"))
        return;
    kvc_bind_check(kvc_kv_swap_blocks(src_layout->layout, src_k, src_v, dst_layout->layout, dst_k, dst_v, pairs,
                                      pairs_len / 2));
}

static void kvc_bind_gather(const KvLayout* l, uint32_t layer, const void* k, uint64_t k_bytes, const void* v,
                            uint64_t v_bytes, const int32_t* block_tables, size_t tables_len,
                            size_t max_blocks_per_seq, const int32_t* seq_lens, size_t num_seqs, float* out_k,
                            size_t out_k_len, float* out_v, size_t out_v_len) {
    if (!kvc_bind_caches_fit(l, k_bytes, v_bytes) ||
        !kvc_bind_require(tables_len == num_seqs * max_blocks_per_seq,
                          "block_tables must hold seq_lens.length * max_blocks_per_seq block ids"))
        return;
    size_t capacity = (out_k_len < out_v_len ? out_k_len : out_v_len) / kvc_bind_row(l);
    kvc_bind_check(kvc_kv_gather(l->layout, layer, k, v, block_tables, max_blocks_per_seq, seq_lens, num_seqs,
                                 out_k, out_v, KVC_DTYPE_F32, capacity));
}

static void kvc_bind_attention(const KvLayout* l, uint32_t layer, const void* k, uint64_t k_bytes, const void* v,
                               uint64_t v_bytes, const float* query, size_t query_len, uint32_t num_q_heads,
                               const int32_t* block_tables, size_t tables_len, size_t max_blocks_per_seq,
                               const int32_t* seq_lens, size_t num_seqs, float scale, float* out, size_t out_len) {
    size_t rows = num_seqs * num_q_heads * l->head_dim;
    if (!kvc_bind_caches_fit(l, k_bytes, v_bytes) ||
        !kvc_bind_require(tables_len == num_seqs * max_blocks_per_seq,
                          "block_tables must hold seq_lens.length * max_blocks_per_seq block ids") ||
        !kvc_bind_require(query_len == rows && out_len == rows,
                          "query and output must hold seq_lens.length * num_q_heads * head_dim floats"))
        return;
    kvc_bind_check(kvc_kv_attention_decode(l->layout, layer, k, v, query, num_q_heads, block_tables,
                                           max_blocks_per_seq, seq_lens, num_seqs, scale, out));
}

/* The CUDA twins (kvcore/ops_cuda.h) take every buffer by address and the index arrays from the host; the
   binding checks only what the arrays' lengths must agree on. */
static int kvc_bind_tables_ok(size_t tables_len, size_t num_seqs, size_t max_blocks_per_seq) {
    return kvc_bind_require(tables_len == num_seqs * max_blocks_per_seq,
                            "block_tables must hold seq_lens.length * max_blocks_per_seq block ids");
}
static int kvc_bind_pairs_ok(size_t pairs_len) {
    return kvc_bind_require(pairs_len % 2 == 0, "pairs holds (src, dst) pairs: an even length");
}
#define KVC_BIND_ADDRESS(a) ((void*)(uintptr_t)(a))
%}
KVC_BIND_HANDLE(KvLayout)
/* Caches the call writes (Java copies them back) and caches it only reads, as floats or bytes. */
KVC_OUTPUT_ARRAY(float, k_cache, float, float, jfloatArray, jfloat, Float, float32)
KVC_OUTPUT_ARRAY(float, v_cache, float, float, jfloatArray, jfloat, Float, float32)
KVC_INPUT_ARRAY(float, k_cache, float, float, jfloatArray, jfloat, Float, float32)
KVC_INPUT_ARRAY(float, v_cache, float, float, jfloatArray, jfloat, Float, float32)
KVC_OUTPUT_ARRAY(uint8_t, k_cache, byte, byte, jbyteArray, jbyte, Byte, byte)
KVC_OUTPUT_ARRAY(uint8_t, v_cache, byte, byte, jbyteArray, jbyte, Byte, byte)
KVC_INPUT_ARRAY(uint8_t, k_cache, byte, byte, jbyteArray, jbyte, Byte, byte)
KVC_INPUT_ARRAY(uint8_t, v_cache, byte, byte, jbyteArray, jbyte, Byte, byte)
KVC_OUTPUT_ARRAY(float, dst_k, float, float, jfloatArray, jfloat, Float, float32)
KVC_OUTPUT_ARRAY(float, dst_v, float, float, jfloatArray, jfloat, Float, float32)
KVC_OUTPUT_ARRAY(uint8_t, dst_k, byte, byte, jbyteArray, jbyte, Byte, byte)
KVC_OUTPUT_ARRAY(uint8_t, dst_v, byte, byte, jbyteArray, jbyte, Byte, byte)
KVC_INPUT_ARRAY(float, key_rows, float, float, jfloatArray, jfloat, Float, float32)
KVC_INPUT_ARRAY(float, value_rows, float, float, jfloatArray, jfloat, Float, float32)
KVC_INPUT_ARRAY(float, query, float, float, jfloatArray, jfloat, Float, float32)
KVC_INPUT_ARRAY(float, k_scales, float, float, jfloatArray, jfloat, Float, float32)
KVC_INPUT_ARRAY(float, v_scales, float, float, jfloatArray, jfloat, Float, float32)
/* Declared long long: SWIG's int64_t, whose const pointer it would cast to long long const *. */
KVC_INPUT_ARRAY(long long, slots, long, long, jlongArray, jlong, Long, int64)
KVC_INPUT_ARRAY(int32_t, pairs, int, int, jintArray, jint, Int, int32)
KVC_INPUT_ARRAY(int32_t, block_tables, int, int, jintArray, jint, Int, int32)
KVC_INPUT_ARRAY(int32_t, seq_lens, int, int, jintArray, jint, Int, int32)
KVC_OUTPUT_ARRAY(float, out_k, float, float, jfloatArray, jfloat, Float, float32)
KVC_OUTPUT_ARRAY(float, out_v, float, float, jfloatArray, jfloat, Float, float32)
KVC_OUTPUT_ARRAY(float, out, float, float, jfloatArray, jfloat, Float, float32)
KVC_INTERNAL(KvLayout::set_fp8_scales_raw)
KVC_INTERNAL(KvLayout::write_f32)
KVC_INTERNAL(KvLayout::write_bytes)
KVC_INTERNAL(KvLayout::write_at)
KVC_INTERNAL(KvLayout::copy_blocks_f32)
KVC_INTERNAL(KvLayout::copy_blocks_bytes)
KVC_INTERNAL(KvLayout::copy_blocks_at)
KVC_INTERNAL(KvLayout::swap_blocks_f32)
KVC_INTERNAL(KvLayout::swap_blocks_bytes)
KVC_INTERNAL(KvLayout::swap_blocks_at)
KVC_INTERNAL(KvLayout::gather_f32)
KVC_INTERNAL(KvLayout::gather_bytes)
KVC_INTERNAL(KvLayout::gather_at)
KVC_INTERNAL(KvLayout::attention_decode_f32)
KVC_INTERNAL(KvLayout::attention_decode_bytes)
KVC_INTERNAL(KvLayout::attention_decode_at)
KVC_INTERNAL(KvLayout::cuda_write_at)
KVC_INTERNAL(KvLayout::cuda_copy_blocks_at)
KVC_INTERNAL(KvLayout::cuda_swap_blocks_at)
KVC_INTERNAL(KvLayout::cuda_gather_at)
KVC_INTERNAL(KvLayout::cuda_attention_decode_at)
KVC_INTERNAL(KvLayout::cuda_available_raw)
#if defined(SWIGCSHARP)
/* Its array and IntPtr members are written in bindings/csharp/src/KvOps.cs. */
%typemap(csclassmodifiers) KvLayout "public partial class"
#elif defined(SWIGJAVA)
%typemap(javainterfaces) KvLayout "AutoCloseable"
%typemap(javacode) KvLayout %{
  /** Frees the native layout; using it afterwards throws KvcoreException(INVALID_STATE). */
  @Override
  public void close() {
    delete();
  }

  /** A layout of the given shape (packed strides, FP8 scales 1.0). */
  public KvLayout(int layers, int numBlocks, int blockSize, int kvHeads, int headDim, DType dtype) {
    this();
    setShape(layers, numBlocks, blockSize, kvHeads, headDim, dtype);
  }

  /** One K and one V scale per layer (FP8 layouts read them). */
  public void setFp8Scales(float[] kScales, float[] vScales) {
    setFp8ScalesRaw(KvcoreException.requireNonNull(kScales, "kScales"), kScales.length,
                    KvcoreException.requireNonNull(vScales, "vScales"), vScales.length);
  }

  // ---- float[] caches (an F32 layout; cacheBytes() / 4 floats each) ----

  /** Writes one layer's new tokens: keys and values [slots.length, kvHeads, headDim]; slot -1 skips a token. */
  public void write(int layer, float[] kCache, float[] vCache, float[] keys, float[] values, long[] slots) {
    writeF32(layer, nn(kCache, "kCache"), kCache.length, nn(vCache, "vCache"), vCache.length, nn(keys, "keys"),
             keys.length, nn(values, "values"), values.length, nn(slots, "slots"), slots.length);
  }

  /** Copies block pairs[2i] to pairs[2i+1] in every layer, K and V. */
  public void copyBlocks(float[] kCache, float[] vCache, int[] pairs) {
    copyBlocksF32(nn(kCache, "kCache"), kCache.length, nn(vCache, "vCache"), vCache.length, nn(pairs, "pairs"),
                  pairs.length);
  }

  /** Copies block pairs[2i] of these caches (this layout) to block pairs[2i+1] of dst's (dstLayout). */
  public void swapBlocks(float[] srcK, float[] srcV, KvLayout dstLayout, float[] dstK, float[] dstV, int[] pairs) {
    swapBlocksF32(nn(srcK, "srcK"), srcK.length, nn(srcV, "srcV"), srcV.length, nn(dstLayout, "dstLayout"),
                  nn(dstK, "dstK"), dstK.length, nn(dstV, "dstV"), dstV.length, nn(pairs, "pairs"), pairs.length);
  }

  /** Copies each sequence's first seqLens[s] tokens (block table s = blockTables[s * maxBlocksPerSeq ...])
   * to outK and outV as [tokens, kvHeads, headDim] floats, sequences one after the other. */
  public void gather(int layer, float[] kCache, float[] vCache, int[] blockTables, int maxBlocksPerSeq,
                     int[] seqLens, float[] outK, float[] outV) {
    gatherF32(layer, nn(kCache, "kCache"), kCache.length, nn(vCache, "vCache"), vCache.length,
              nn(blockTables, "blockTables"), blockTables.length, maxBlocksPerSeq, nn(seqLens, "seqLens"),
              seqLens.length, nn(outK, "outK"), outK.length, nn(outV, "outV"), outV.length);
  }

  /** Decode attention: out[s, h] = softmax(scale * q[s, h] . K) V over each sequence's seqLens[s] tokens;
   * query and out are [seqLens.length, numQHeads, headDim]. */
  public void attentionDecode(int layer, float[] kCache, float[] vCache, float[] query, int numQHeads,
                              int[] blockTables, int maxBlocksPerSeq, int[] seqLens, float scale, float[] out) {
    attentionDecodeF32(layer, nn(kCache, "kCache"), kCache.length, nn(vCache, "vCache"), vCache.length,
                       nn(query, "query"), query.length, numQHeads, nn(blockTables, "blockTables"),
                       blockTables.length, maxBlocksPerSeq, nn(seqLens, "seqLens"), seqLens.length, scale,
                       nn(out, "out"), out.length);
  }

  // ---- byte[] caches (any dtype; cacheBytes() bytes each) ----

  public void write(int layer, byte[] kCache, byte[] vCache, float[] keys, float[] values, long[] slots) {
    writeBytes(layer, nn(kCache, "kCache"), kCache.length, nn(vCache, "vCache"), vCache.length, nn(keys, "keys"),
               keys.length, nn(values, "values"), values.length, nn(slots, "slots"), slots.length);
  }

  public void copyBlocks(byte[] kCache, byte[] vCache, int[] pairs) {
    copyBlocksBytes(nn(kCache, "kCache"), kCache.length, nn(vCache, "vCache"), vCache.length, nn(pairs, "pairs"),
                    pairs.length);
  }

  public void swapBlocks(byte[] srcK, byte[] srcV, KvLayout dstLayout, byte[] dstK, byte[] dstV, int[] pairs) {
    swapBlocksBytes(nn(srcK, "srcK"), srcK.length, nn(srcV, "srcV"), srcV.length, nn(dstLayout, "dstLayout"),
                    nn(dstK, "dstK"), dstK.length, nn(dstV, "dstV"), dstV.length, nn(pairs, "pairs"), pairs.length);
  }

  public void gather(int layer, byte[] kCache, byte[] vCache, int[] blockTables, int maxBlocksPerSeq,
                     int[] seqLens, float[] outK, float[] outV) {
    gatherBytes(layer, nn(kCache, "kCache"), kCache.length, nn(vCache, "vCache"), vCache.length,
                nn(blockTables, "blockTables"), blockTables.length, maxBlocksPerSeq, nn(seqLens, "seqLens"),
                seqLens.length, nn(outK, "outK"), outK.length, nn(outV, "outV"), outV.length);
  }

  public void attentionDecode(int layer, byte[] kCache, byte[] vCache, float[] query, int numQHeads,
                              int[] blockTables, int maxBlocksPerSeq, int[] seqLens, float scale, float[] out) {
    attentionDecodeBytes(layer, nn(kCache, "kCache"), kCache.length, nn(vCache, "vCache"), vCache.length,
                         nn(query, "query"), query.length, numQHeads, nn(blockTables, "blockTables"),
                         blockTables.length, maxBlocksPerSeq, nn(seqLens, "seqLens"), seqLens.length, scale,
                         nn(out, "out"), out.length);
  }

  // ---- raw addresses (native memory the layout describes, e.g. Pool.storageAddress(); unchecked) ----

  public void writeAt(int layer, long kAddress, long vAddress, float[] keys, float[] values, long[] slots) {
    writeAtRaw(layer, kAddress, vAddress, nn(keys, "keys"), keys.length, nn(values, "values"), values.length,
               nn(slots, "slots"), slots.length);
  }

  public void copyBlocksAt(long kAddress, long vAddress, int[] pairs) {
    copyBlocksAtRaw(kAddress, vAddress, nn(pairs, "pairs"), pairs.length);
  }

  public void swapBlocksAt(long srcK, long srcV, KvLayout dstLayout, long dstK, long dstV, int[] pairs) {
    swapBlocksAtRaw(srcK, srcV, nn(dstLayout, "dstLayout"), dstK, dstV, nn(pairs, "pairs"), pairs.length);
  }

  public void gatherAt(int layer, long kAddress, long vAddress, int[] blockTables, int maxBlocksPerSeq,
                       int[] seqLens, float[] outK, float[] outV) {
    gatherAtRaw(layer, kAddress, vAddress, nn(blockTables, "blockTables"), blockTables.length, maxBlocksPerSeq,
                nn(seqLens, "seqLens"), seqLens.length, nn(outK, "outK"), outK.length, nn(outV, "outV"),
                outV.length);
  }

  public void attentionDecodeAt(int layer, long kAddress, long vAddress, float[] query, int numQHeads,
                                int[] blockTables, int maxBlocksPerSeq, int[] seqLens, float scale, float[] out) {
    attentionDecodeAtRaw(layer, kAddress, vAddress, nn(query, "query"), query.length, numQHeads,
                         nn(blockTables, "blockTables"), blockTables.length, maxBlocksPerSeq, nn(seqLens, "seqLens"),
                         seqLens.length, scale, nn(out, "out"), out.length);
  }

  // ---- the CUDA twins (kvcore/ops_cuda.h): device (or pinned host) memory by address, host index arrays,
  //      a cudaStream_t's address (0: the default stream); each call is queued on the stream and returns ----

  /** Whether this build and machine can run the CUDA kernels; {@link #cudaProbe} says why not. */
  public static boolean cudaAvailable() {
    return cudaAvailableRaw() != 0;
  }

  public void cudaWrite(int layer, long kCache, long vCache, long keys, long values, DType keysDtype, long[] slots,
                        long stream) {
    cudaWriteRaw(layer, kCache, vCache, keys, values, keysDtype, nn(slots, "slots"), slots.length, stream);
  }

  public void cudaCopyBlocks(long kCache, long vCache, int[] pairs, long stream) {
    cudaCopyBlocksRaw(kCache, vCache, nn(pairs, "pairs"), pairs.length, stream);
  }

  public void cudaSwapBlocks(long srcK, long srcV, KvLayout dstLayout, long dstK, long dstV, int[] pairs,
                             long stream) {
    cudaSwapBlocksRaw(srcK, srcV, nn(dstLayout, "dstLayout"), dstK, dstV, nn(pairs, "pairs"), pairs.length, stream);
  }

  public void cudaGather(int layer, long kCache, long vCache, int[] blockTables, int maxBlocksPerSeq, int[] seqLens,
                         long outK, long outV, DType outDtype, long outCapacityTokens, long stream) {
    cudaGatherRaw(layer, kCache, vCache, nn(blockTables, "blockTables"), blockTables.length, maxBlocksPerSeq,
                  nn(seqLens, "seqLens"), seqLens.length, outK, outV, outDtype, outCapacityTokens, stream);
  }

  public void cudaAttentionDecode(int layer, long kCache, long vCache, long query, int numQHeads, int[] blockTables,
                                  int maxBlocksPerSeq, int[] seqLens, float scale, long out, long stream) {
    cudaAttentionDecodeRaw(layer, kCache, vCache, query, numQHeads, nn(blockTables, "blockTables"),
                           blockTables.length, maxBlocksPerSeq, nn(seqLens, "seqLens"), seqLens.length, scale, out,
                           stream);
  }

  private static <T> T nn(T value, String name) {
    return KvcoreException.requireNonNull(value, name);
  }
%}
/* Java's public raw-address methods keep the plain names; the generated ones get a Raw suffix. */
%rename(writeAtRaw) KvLayout::write_at;
%rename(copyBlocksAtRaw) KvLayout::copy_blocks_at;
%rename(swapBlocksAtRaw) KvLayout::swap_blocks_at;
%rename(gatherAtRaw) KvLayout::gather_at;
%rename(attentionDecodeAtRaw) KvLayout::attention_decode_at;
%rename(cudaWriteRaw) KvLayout::cuda_write_at;
%rename(cudaCopyBlocksRaw) KvLayout::cuda_copy_blocks_at;
%rename(cudaSwapBlocksRaw) KvLayout::cuda_swap_blocks_at;
%rename(cudaGatherRaw) KvLayout::cuda_gather_at;
%rename(cudaAttentionDecodeRaw) KvLayout::cuda_attention_decode_at;
#endif

/* The layout of a KV cache: shape and element type, strides, FP8 scales (see kvcore/ops.h). */
typedef struct {} KvLayout;
%extend KvLayout {
  KvLayout() {
    KvLayout* l = (KvLayout*)calloc(1, sizeof *l);
    if (l == NULL) {
      kvc_bind_fail(KVC_ERR_NO_MEMORY, "out of memory");
      return NULL;
    }
    kvc_status status = kvc_kv_layout_create(&l->layout);
    if (status != KVC_OK) {
      free(l);
      kvc_bind_check(status);
      return NULL;
    }
    /* kvc_kv_layout's defaults */
    l->layers = 1;
    l->num_blocks = 1024;
    l->kv_heads = 8;
    l->head_dim = 128;
    return l;
  }
  ~KvLayout() {
    kvc_kv_layout_destroy($self->layout);
    free($self);
  }
  /* Resets the strides to packed and the FP8 scales to 1.0. */
  void set_shape(uint32_t layers, uint32_t num_blocks, uint32_t block_size, uint32_t kv_heads, uint32_t head_dim,
                 kvc_dtype dtype) {
    kvc_status status =
        kvc_kv_layout_set_shape($self->layout, layers, num_blocks, block_size, kv_heads, head_dim, dtype);
    kvc_bind_check(status);
    if (status != KVC_OK) return;
    $self->layers = layers;
    $self->num_blocks = num_blocks;
    $self->kv_heads = kv_heads;
    $self->head_dim = head_dim;
    $self->block_stride = 0;
    $self->layer_stride = 0;
  }
  /* Bytes between blocks and between layers; 0 picks the packed value. */
  void set_strides(uint64_t block_stride, uint64_t layer_stride) {
    kvc_status status = kvc_kv_layout_set_strides($self->layout, block_stride, layer_stride);
    kvc_bind_check(status);
    if (status != KVC_OK) return;
    $self->block_stride = block_stride;
    $self->layer_stride = layer_stride;
  }
  void set_fp8_scales_raw(const float* k_scales, size_t k_len, const float* v_scales, size_t v_len) {
    if (kvc_bind_require(k_len == v_len, "k_scales and v_scales differ in length"))
      kvc_bind_check(kvc_kv_layout_set_fp8_scales($self->layout, k_scales, v_scales, k_len));
  }
  /* Bytes of one block of K (or V) of one layer, INT8 scales included. */
  uint64_t block_bytes() { return kvc_kv_layout_block_bytes($self->layout); }
  /* Bytes a K (or V) cache must span: the length of a byte[] cache, 4 times that of a float[] one. */
  uint64_t cache_bytes() { return kvc_bind_cache_bytes($self); }
  uint32_t layers() { return $self->layers; }
  uint32_t num_blocks() { return $self->num_blocks; }
  uint32_t kv_heads() { return $self->kv_heads; }
  uint32_t head_dim() { return $self->head_dim; }

  void write_f32(uint32_t layer, float* k_cache, size_t k_len, float* v_cache, size_t v_len, const float* key_rows,
                 size_t key_len, const float* value_rows, size_t value_len, const long long* slots, size_t n) {
    kvc_bind_write($self, layer, k_cache, (uint64_t)k_len * 4, v_cache, (uint64_t)v_len * 4, key_rows, key_len,
                   value_rows, value_len, (const int64_t*)slots, n);
  }
  void write_bytes(uint32_t layer, uint8_t* k_cache, size_t k_len, uint8_t* v_cache, size_t v_len,
                   const float* key_rows, size_t key_len, const float* value_rows, size_t value_len,
                   const long long* slots, size_t n) {
    kvc_bind_write($self, layer, k_cache, k_len, v_cache, v_len, key_rows, key_len, value_rows, value_len,
                   (const int64_t*)slots, n);
  }
  void write_at(uint32_t layer, uint64_t k_address, uint64_t v_address, const float* key_rows, size_t key_len,
                const float* value_rows, size_t value_len, const long long* slots, size_t n) {
    kvc_bind_write($self, layer, (void*)(uintptr_t)k_address, KVC_BIND_UNCHECKED, (void*)(uintptr_t)v_address,
                   KVC_BIND_UNCHECKED, key_rows, key_len, value_rows, value_len, (const int64_t*)slots, n);
  }

  void copy_blocks_f32(float* k_cache, size_t k_len, float* v_cache, size_t v_len, const int32_t* pairs,
                       size_t pairs_len) {
    kvc_bind_copy($self, k_cache, (uint64_t)k_len * 4, v_cache, (uint64_t)v_len * 4, pairs, pairs_len);
  }
  void copy_blocks_bytes(uint8_t* k_cache, size_t k_len, uint8_t* v_cache, size_t v_len, const int32_t* pairs,
                         size_t pairs_len) {
    kvc_bind_copy($self, k_cache, k_len, v_cache, v_len, pairs, pairs_len);
  }
  void copy_blocks_at(uint64_t k_address, uint64_t v_address, const int32_t* pairs, size_t pairs_len) {
    kvc_bind_copy($self, (void*)(uintptr_t)k_address, KVC_BIND_UNCHECKED, (void*)(uintptr_t)v_address,
                  KVC_BIND_UNCHECKED, pairs, pairs_len);
  }

  void swap_blocks_f32(const float* k_cache, size_t k_len, const float* v_cache, size_t v_len,
                       const KvLayout* dst_layout, float* dst_k, size_t dst_k_len, float* dst_v, size_t dst_v_len,
                       const int32_t* pairs, size_t pairs_len) {
    kvc_bind_swap($self, k_cache, (uint64_t)k_len * 4, v_cache, (uint64_t)v_len * 4, dst_layout, dst_k,
                  (uint64_t)dst_k_len * 4, dst_v, (uint64_t)dst_v_len * 4, pairs, pairs_len);
  }
  void swap_blocks_bytes(const uint8_t* k_cache, size_t k_len, const uint8_t* v_cache, size_t v_len,
                         const KvLayout* dst_layout, uint8_t* dst_k, size_t dst_k_len, uint8_t* dst_v,
                         size_t dst_v_len, const int32_t* pairs, size_t pairs_len) {
    kvc_bind_swap($self, k_cache, k_len, v_cache, v_len, dst_layout, dst_k, dst_k_len, dst_v, dst_v_len, pairs,
                  pairs_len);
  }
  void swap_blocks_at(uint64_t src_k, uint64_t src_v, const KvLayout* dst_layout, uint64_t dst_k, uint64_t dst_v,
                      const int32_t* pairs, size_t pairs_len) {
    kvc_bind_swap($self, (const void*)(uintptr_t)src_k, KVC_BIND_UNCHECKED, (const void*)(uintptr_t)src_v,
                  KVC_BIND_UNCHECKED, dst_layout, (void*)(uintptr_t)dst_k, KVC_BIND_UNCHECKED,
                  (void*)(uintptr_t)dst_v, KVC_BIND_UNCHECKED, pairs, pairs_len);
  }

  void gather_f32(uint32_t layer, const float* k_cache, size_t k_len, const float* v_cache, size_t v_len,
                  const int32_t* block_tables, size_t tables_len, size_t max_blocks_per_seq, const int32_t* seq_lens,
                  size_t num_seqs, float* out_k, size_t out_k_len, float* out_v, size_t out_v_len) {
    kvc_bind_gather($self, layer, k_cache, (uint64_t)k_len * 4, v_cache, (uint64_t)v_len * 4, block_tables,
                    tables_len, max_blocks_per_seq, seq_lens, num_seqs, out_k, out_k_len, out_v, out_v_len);
  }
  void gather_bytes(uint32_t layer, const uint8_t* k_cache, size_t k_len, const uint8_t* v_cache, size_t v_len,
                    const int32_t* block_tables, size_t tables_len, size_t max_blocks_per_seq,
                    const int32_t* seq_lens, size_t num_seqs, float* out_k, size_t out_k_len, float* out_v,
                    size_t out_v_len) {
    kvc_bind_gather($self, layer, k_cache, k_len, v_cache, v_len, block_tables, tables_len, max_blocks_per_seq,
                    seq_lens, num_seqs, out_k, out_k_len, out_v, out_v_len);
  }
  void gather_at(uint32_t layer, uint64_t k_address, uint64_t v_address, const int32_t* block_tables,
                 size_t tables_len, size_t max_blocks_per_seq, const int32_t* seq_lens, size_t num_seqs,
                 float* out_k, size_t out_k_len, float* out_v, size_t out_v_len) {
    kvc_bind_gather($self, layer, (const void*)(uintptr_t)k_address, KVC_BIND_UNCHECKED,
                    (const void*)(uintptr_t)v_address, KVC_BIND_UNCHECKED, block_tables, tables_len,
                    max_blocks_per_seq, seq_lens, num_seqs, out_k, out_k_len, out_v, out_v_len);
  }

  void attention_decode_f32(uint32_t layer, const float* k_cache, size_t k_len, const float* v_cache, size_t v_len,
                            const float* query, size_t query_len, uint32_t num_q_heads, const int32_t* block_tables,
                            size_t tables_len, size_t max_blocks_per_seq, const int32_t* seq_lens, size_t num_seqs,
                            float scale, float* out, size_t out_len) {
    kvc_bind_attention($self, layer, k_cache, (uint64_t)k_len * 4, v_cache, (uint64_t)v_len * 4, query, query_len,
                       num_q_heads, block_tables, tables_len, max_blocks_per_seq, seq_lens, num_seqs, scale, out,
                       out_len);
  }
  void attention_decode_bytes(uint32_t layer, const uint8_t* k_cache, size_t k_len, const uint8_t* v_cache,
                              size_t v_len, const float* query, size_t query_len, uint32_t num_q_heads,
                              const int32_t* block_tables, size_t tables_len, size_t max_blocks_per_seq,
                              const int32_t* seq_lens, size_t num_seqs, float scale, float* out, size_t out_len) {
    kvc_bind_attention($self, layer, k_cache, k_len, v_cache, v_len, query, query_len, num_q_heads, block_tables,
                       tables_len, max_blocks_per_seq, seq_lens, num_seqs, scale, out, out_len);
  }
  void attention_decode_at(uint32_t layer, uint64_t k_address, uint64_t v_address, const float* query,
                           size_t query_len, uint32_t num_q_heads, const int32_t* block_tables, size_t tables_len,
                           size_t max_blocks_per_seq, const int32_t* seq_lens, size_t num_seqs, float scale,
                           float* out, size_t out_len) {
    kvc_bind_attention($self, layer, (const void*)(uintptr_t)k_address, KVC_BIND_UNCHECKED,
                       (const void*)(uintptr_t)v_address, KVC_BIND_UNCHECKED, query, query_len, num_q_heads,
                       block_tables, tables_len, max_blocks_per_seq, seq_lens, num_seqs, scale, out, out_len);
  }

  /* ---- the CUDA twins: device (or pinned host) memory by address, host index arrays, the cudaStream_t's
   *      address (0: the default stream); asynchronous on the stream (kvcore/ops_cuda.h) ---- */
  void cuda_write_at(uint32_t layer, uint64_t k_address, uint64_t v_address, uint64_t key_address,
                     uint64_t value_address, kvc_dtype src_dtype, const long long* slots, size_t n, uint64_t stream) {
    kvc_bind_check(kvc_kv_cuda_write($self->layout, layer, KVC_BIND_ADDRESS(k_address), KVC_BIND_ADDRESS(v_address),
                                     KVC_BIND_ADDRESS(key_address), KVC_BIND_ADDRESS(value_address), src_dtype,
                                     (const int64_t*)slots, n, KVC_BIND_ADDRESS(stream)));
  }
  void cuda_copy_blocks_at(uint64_t k_address, uint64_t v_address, const int32_t* pairs, size_t pairs_len,
                           uint64_t stream) {
    if (kvc_bind_pairs_ok(pairs_len))
      kvc_bind_check(kvc_kv_cuda_copy_blocks($self->layout, KVC_BIND_ADDRESS(k_address), KVC_BIND_ADDRESS(v_address),
                                             pairs, pairs_len / 2, KVC_BIND_ADDRESS(stream)));
  }
  void cuda_swap_blocks_at(uint64_t src_k, uint64_t src_v, const KvLayout* dst_layout, uint64_t dst_k, uint64_t dst_v,
                           const int32_t* pairs, size_t pairs_len, uint64_t stream) {
    if (kvc_bind_layout_ok(dst_layout) && kvc_bind_pairs_ok(pairs_len))
      kvc_bind_check(kvc_kv_cuda_swap_blocks($self->layout, KVC_BIND_ADDRESS(src_k), KVC_BIND_ADDRESS(src_v),
                                             dst_layout->layout, KVC_BIND_ADDRESS(dst_k), KVC_BIND_ADDRESS(dst_v),
                                             pairs, pairs_len / 2, KVC_BIND_ADDRESS(stream)));
  }
  void cuda_gather_at(uint32_t layer, uint64_t k_address, uint64_t v_address, const int32_t* block_tables,
                      size_t tables_len, size_t max_blocks_per_seq, const int32_t* seq_lens, size_t num_seqs,
                      uint64_t out_k, uint64_t out_v, kvc_dtype out_dtype, uint64_t out_capacity_tokens,
                      uint64_t stream) {
    if (kvc_bind_tables_ok(tables_len, num_seqs, max_blocks_per_seq))
      kvc_bind_check(kvc_kv_cuda_gather($self->layout, layer, KVC_BIND_ADDRESS(k_address), KVC_BIND_ADDRESS(v_address),
                                        block_tables, max_blocks_per_seq, seq_lens, num_seqs, KVC_BIND_ADDRESS(out_k),
                                        KVC_BIND_ADDRESS(out_v), out_dtype, (size_t)out_capacity_tokens,
                                        KVC_BIND_ADDRESS(stream)));
  }
  void cuda_attention_decode_at(uint32_t layer, uint64_t k_address, uint64_t v_address, uint64_t query,
                                uint32_t num_q_heads, const int32_t* block_tables, size_t tables_len,
                                size_t max_blocks_per_seq, const int32_t* seq_lens, size_t num_seqs, float scale,
                                uint64_t out, uint64_t stream) {
    if (kvc_bind_tables_ok(tables_len, num_seqs, max_blocks_per_seq))
      kvc_bind_check(kvc_kv_cuda_attention_decode($self->layout, layer, KVC_BIND_ADDRESS(k_address),
                                                  KVC_BIND_ADDRESS(v_address), (const float*)KVC_BIND_ADDRESS(query),
                                                  num_q_heads, block_tables, max_blocks_per_seq, seq_lens, num_seqs,
                                                  scale, (float*)KVC_BIND_ADDRESS(out), KVC_BIND_ADDRESS(stream)));
  }
  /* Raises UNSUPPORTED with the reason when this build or machine cannot run the CUDA kernels. */
  static void cuda_probe() { kvc_bind_check(kvc_kv_cuda_probe()); }
  static uint32_t cuda_available_raw() { return kvc_kv_cuda_available(); }

  /* The kernels' worker threads (0 = one per core, 1 = the calling thread), and the vector ISA chosen. */
  static void set_threads(uint32_t threads) { kvc_bind_check(kvc_kv_set_threads(threads)); }
  static uint32_t threads() { return kvc_kv_threads(); }
  static const char* isa() { return kvc_kv_isa(); }
}

/* ---- scheduler --------------------------------------------------------------------------------- */

/* kvcore/sched.h: continuous batching over one pool. Its functions are bound through the classes below;
   each language turns a plan into entries with their arrays, so the size queries stay here. */
#if defined(SWIGCSHARP) || defined(SWIGJAVA)
%rename(SchedPolicy) kvc_sched_policy;
%rename(PreemptionMode) kvc_preemption_mode;
/* Scoped there (SchedPolicy.FIFO); Go's enum items share one namespace and keep their prefixes, the Go
   package naming its own constants. */
%rename(FIFO) KVC_SCHED_FIFO;
%rename(PRIORITY) KVC_SCHED_PRIORITY;
%rename(CACHE_AWARE) KVC_SCHED_CACHE_AWARE;
%rename(RECOMPUTE) KVC_PREEMPT_RECOMPUTE;
%rename(SWAP) KVC_PREEMPT_SWAP;
#endif
/* FinishReason's CAPACITY would collide with Status's among SWIG's (C's) global enum items, so the reason
   crosses as its value and each language declares the enum itself. */
%ignore kvc_sched_finish_reason;
%ignore KVC_SCHED_FINISH_STOP;
%ignore KVC_SCHED_FINISH_LENGTH;
%ignore KVC_SCHED_FINISH_CAPACITY;
%rename("$ignore", regextarget=1, %$isfunction) "^kvc_sched_";
%ignore kvc_sched_options;
%ignore kvc_sched;
%ignore kvc_sched_plan;
%include "kvcore/sched.h"

%{
typedef struct kvc_sched_options SchedOptions;
typedef struct kvc_sched Scheduler;
typedef struct kvc_sched_plan SchedPlan;

/* A closed plan (a NULL handle) is refused in the body, after Java has borrowed the arrays, so that they
   are released. */
static int kvc_bind_plan_ok(const SchedPlan* plan) {
    if (plan == NULL) kvc_bind_fail(KVC_ERR_INVALID_STATE, "the plan has been closed");
    return plan != NULL;
}

/* One field of entry i (kvc_sched_plan_sequence's outputs), so each getter is one call that may raise. */
enum kvc_bind_plan_field_id { KVC_BIND_REQUEST_ID, KVC_BIND_NUM_TOKENS, KVC_BIND_NUM_COMPUTED, KVC_BIND_SAMPLES };
static uint64_t kvc_bind_plan_field(const SchedPlan* plan, size_t i, enum kvc_bind_plan_field_id field) {
    uint64_t request_id = 0;
    size_t num_tokens = 0, num_computed = 0;
    uint32_t samples = 0;
    kvc_bind_check(kvc_sched_plan_sequence(plan, i, &request_id, &num_tokens, &num_computed, &samples));
    switch (field) {
        case KVC_BIND_REQUEST_ID: return request_id;
        case KVC_BIND_NUM_TOKENS: return num_tokens;
        case KVC_BIND_NUM_COMPUTED: return num_computed;
        default: return samples;
    }
}
%}
KVC_BIND_HANDLE(SchedOptions)
KVC_BIND_HANDLE(Scheduler)
KVC_BIND_HANDLE(SchedPlan)
KVC_CLOSEABLE(SchedOptions)
KVC_CLOSEABLE(Scheduler)
KVC_CLOSEABLE(SchedPlan)
KVC_INPUT_ARRAY(int32_t, sampled, int, int, jintArray, jint, Int, int32)
KVC_INPUT_ARRAY(uint8_t, finished, byte, byte, jbyteArray, jbyte, Byte, byte)
KVC_OUTPUT_ARRAY(int32_t, out_tokens, int, int, jintArray, jint, Int, int32)
KVC_OUTPUT_ARRAY(int64_t, out_positions, long, long, jlongArray, jlong, Long, int64)
KVC_OUTPUT_ARRAY(uint64_t, out_ids, ulong, long, jlongArray, jlong, Long, uint64)
KVC_INTERNAL(Scheduler::set_session_store_raw)
KVC_INTERNAL(Scheduler::submit_raw)
KVC_INTERNAL(Scheduler::step_raw)
KVC_INTERNAL(Scheduler::commit_raw)
KVC_INTERNAL(Scheduler::output_size)
KVC_INTERNAL(Scheduler::output_reason)
KVC_INTERNAL(Scheduler::take_output_into)
KVC_INTERNAL(SchedPlan::request_id)
KVC_INTERNAL(SchedPlan::entry_tokens)
KVC_INTERNAL(SchedPlan::num_computed)
KVC_INTERNAL(SchedPlan::samples)
KVC_INTERNAL(SchedPlan::tokens_into)
KVC_INTERNAL(SchedPlan::positions_into)
KVC_INTERNAL(SchedPlan::slots_into)
KVC_INTERNAL(SchedPlan::block_table_size)
KVC_INTERNAL(SchedPlan::block_table_into)
KVC_INTERNAL(SchedPlan::preempted_size)
KVC_INTERNAL(SchedPlan::preempted_into)
KVC_INTERNAL(SchedPlan::finished_size)
KVC_INTERNAL(SchedPlan::finished_into)
#if defined(SWIGCSHARP)
/* Their convenience members are written in bindings/csharp/src/Scheduler.cs. */
%typemap(csclassmodifiers) Scheduler "public partial class"
%typemap(csclassmodifiers) SchedPlan "public partial class"
#elif defined(SWIGJAVA)
%typemap(javacode) Scheduler %{
  /** A scheduler with the default options over pool. */
  public Scheduler(Pool pool) {
    this(null, pool);
  }

  /** Frees the scheduler and its sequences in the pool; using it afterwards throws KvcoreException(INVALID_STATE). */
  @Override
  public void close() {
    delete();
  }

  /**
   * Attaches the session store under the pool (see kvcore/sched.h): a finished request with a session id saves its
   * conversation's K/V there, admission restores a longer stored prefix from it, and PreemptionMode.SWAP swaps
   * preempted requests' K/V into it; null detaches. Only while no request waits or runs (INVALID_STATE); the pool
   * must hold its K/V in host memory with a model shape. The native store stays alive while attached, even once
   * the Store is closed or finalized.
   */
  public void setSessionStore(Store store) {
    setSessionStoreRaw(store, store == null);
  }

  /**
   * Queues request id (unique among the requests held) with its prompt; priority: higher first under
   * SchedPolicy.PRIORITY, preempted last under every policy; sessionId (may be null) is kept with the output;
   * keys (may be null): LoRA, cache salt, multimodal items. QUEUE_FULL when the queue is at its bound.
   */
  public void submit(long requestId, int[] prompt, int maxNewTokens, int priority, String sessionId,
                     SequenceOptions keys) {
    submitRaw(requestId, prompt, KvcoreException.requireNonNull(prompt, "prompt").length, maxNewTokens, priority,
              sessionId, keys);
  }

  public void submit(long requestId, int[] prompt, int maxNewTokens) {
    submit(requestId, prompt, maxNewTokens, 0, null, null);
  }

  /** The next batch into plan, as its entries (empty: nothing to run, no commit needed). */
  public java.util.List<SchedEntry> step(SchedPlan plan) {
    stepRaw(KvcoreException.requireNonNull(plan, "plan"));
    return plan.entries();
  }

  /**
   * Commits the step: sampled[i] is entry i's token (read where the entry samples; null when none does),
   * finished[i] ends entry i's request after its token (a stop token; null: none). Then plan.finished()
   * lists the requests done.
   */
  public void commit(SchedPlan plan, int[] sampled, boolean[] finished) {
    byte[] flags = null;
    if (finished != null) {
      flags = new byte[finished.length];
      for (int i = 0; i < flags.length; i++) {
        flags[i] = (byte) (finished[i] ? 1 : 0);
      }
    }
    commitRaw(KvcoreException.requireNonNull(plan, "plan"), sampled, sampled == null ? 0 : sampled.length, flags,
              flags == null ? 0 : flags.length);
  }

  public void commit(SchedPlan plan, int[] sampled) {
    commit(plan, sampled, null);
  }

  /** A finished request's tokens, why it finished and its session; the scheduler then forgets it. */
  public SchedOutput takeOutput(long requestId) {
    FinishReason reason = FinishReason.of(outputReason(requestId));
    String session = outputSession(requestId);
    int[] tokens = new int[(int) outputSize(requestId)];
    takeOutputInto(requestId, tokens, tokens.length);
    return new SchedOutput(tokens, reason, session);
  }
%}
%typemap(javacode) SchedPlan %{
  /** Frees the plan; using it afterwards throws KvcoreException(INVALID_STATE). */
  @Override
  public void close() {
    delete();
  }

  /** Entry i: its request, tokens to compute, their positions and slots, its block table. */
  public SchedEntry entry(long i) {
    int n = (int) entryTokens(i);
    int[] tokens = new int[n];
    long[] positions = new long[n];
    long[] slots = new long[n];
    tokensInto(i, tokens, n);
    positionsInto(i, positions, n);
    slotsInto(i, slots, n);
    int[] blocks = new int[(int) blockTableSize(i)];
    blockTableInto(i, blocks, blocks.length);
    return new SchedEntry(requestId(i), numComputed(i), samples(i), tokens, positions, slots, blocks);
  }

  /** Every entry, in the plan's order. */
  public java.util.List<SchedEntry> entries() {
    java.util.List<SchedEntry> all = new java.util.ArrayList<>();
    for (long i = 0; i < count(); i++) {
      all.add(entry(i));
    }
    return all;
  }

  /** Requests the step preempted (requeued; their K/V recomputed, or kept in the session store when swapped). */
  public long[] preempted() {
    long[] ids = new long[(int) preemptedSize()];
    preemptedInto(ids, ids.length);
    return ids;
  }

  /** Requests the commit finished: take their outputs. */
  public long[] finished() {
    long[] ids = new long[(int) finishedSize()];
    finishedInto(ids, ids.length);
    return ids;
  }
%}
#endif

/* Options for a Scheduler: batch bounds, wait, queue bound, policy, preemption, seed, clock. */
typedef struct {} SchedOptions;
%extend SchedOptions {
  SchedOptions() {
    kvc_sched_options* options = NULL;
    kvc_bind_check(kvc_sched_options_create(&options));
    return options;
  }
  ~SchedOptions() { kvc_sched_options_destroy($self); }
  void set_max_batch_sequences(uint32_t sequences) {
    kvc_bind_check(kvc_sched_options_set_max_batch_sequences($self, sequences));
  }
  void set_max_batch_tokens(uint32_t tokens) { kvc_bind_check(kvc_sched_options_set_max_batch_tokens($self, tokens)); }
  void set_max_wait_us(uint64_t microseconds) { kvc_bind_check(kvc_sched_options_set_max_wait_us($self, microseconds)); }
  void set_max_queue(uint32_t requests) { kvc_bind_check(kvc_sched_options_set_max_queue($self, requests)); }
  /* wait_bound_us matters to CACHE_AWARE only (default 1 s). */
  void set_policy(kvc_sched_policy policy, uint64_t wait_bound_us) {
    kvc_bind_check(kvc_sched_options_set_policy($self, policy, wait_bound_us));
  }
  void set_preemption(kvc_preemption_mode mode) { kvc_bind_check(kvc_sched_options_set_preemption($self, mode)); }
  void set_seed(uint64_t seed) { kvc_bind_check(kvc_sched_options_set_seed($self, seed)); }
  /* On: time starts at 0 and moves only by set_time_us. */
  void set_manual_clock(bool enabled) { kvc_bind_check(kvc_sched_options_set_manual_clock($self, enabled ? 1u : 0u)); }
}

/* The continuous-batching scheduler over a pool; one thread makes every call (see kvcore/sched.h). */
typedef struct {} Scheduler;
%extend Scheduler {
  Scheduler(const SchedOptions* options, Pool* pool) { return kvc_bind_sched_create(options, pool); }
  ~Scheduler() { kvc_bind_sched_destroy($self); }
  /* Attaches the session store, or detaches it (detach true, store NULL). A closed store has a NULL handle
     too: refused, so that it never detaches by mistake. */
  void set_session_store_raw(Store* store, bool detach) {
    if (store == NULL && !detach) {
      kvc_bind_fail(KVC_ERR_INVALID_STATE, "the store has been closed");
      return;
    }
    kvc_bind_sched_set_store($self, store);
  }
  void submit_raw(uint64_t request_id, const int32_t* tokens, size_t n, uint32_t max_new_tokens, uint32_t priority,
                  const char* session_id, const SequenceOptions* keys) {
    kvc_bind_check(kvc_sched_submit($self, request_id, tokens, n, max_new_tokens, priority, session_id, keys));
  }
  /* NOT_FOUND for an unknown id, INVALID_STATE for a finished one. */
  void cancel(uint64_t request_id) { kvc_bind_check(kvc_sched_cancel($self, request_id)); }
  /* Manual clock only; never backwards. */
  void set_time_us(uint64_t now_us) { kvc_bind_check(kvc_sched_set_time_us($self, now_us)); }
  void step_raw(SchedPlan* plan) {
    if (kvc_bind_plan_ok(plan)) kvc_bind_check(kvc_sched_step($self, plan));
  }
  void commit_raw(SchedPlan* plan, const int32_t* sampled, size_t n_sampled, const uint8_t* finished,
                  size_t n_finished) {
    if (kvc_bind_plan_ok(plan))
      kvc_bind_check(kvc_sched_commit($self, plan, sampled, n_sampled, finished, n_finished));
  }
  size_t output_size(uint64_t request_id) {
    size_t count = 0;
    kvc_bind_check(kvc_sched_take_output($self, request_id, NULL, 0, &count, NULL));
    return count;
  }
  /* A kvc_sched_finish_reason. */
  uint32_t output_reason(uint64_t request_id) {
    uint32_t reason = 0;
    kvc_bind_check(kvc_sched_take_output($self, request_id, NULL, 0, NULL, &reason));
    return reason;
  }
  /* Takes the output (capacity >= its size): an empty one through a buffer of one, since NULL with capacity
     0 would be a size query that takes nothing. */
  void take_output_into(uint64_t request_id, int32_t* out_tokens, size_t capacity) {
    int32_t none[1];
    if (capacity == 0) {
      out_tokens = none;
      capacity = 1;
    }
    kvc_bind_check(kvc_sched_take_output($self, request_id, out_tokens, capacity, NULL, NULL));
  }
  /* The session id a finished request was submitted with ("" for none), before its output is taken. */
  %newobject output_session;
  char* output_session(uint64_t request_id) {
    size_t length = 0;
    char* text;
    kvc_status status = kvc_sched_output_session($self, request_id, NULL, 0, &length);
    if (status != KVC_OK) {
      kvc_bind_check(status);
      return NULL;
    }
    text = (char*)malloc(length + 1);
    if (text == NULL) {
      kvc_bind_pending = KVC_ERR_NO_MEMORY;
      return NULL;
    }
    status = kvc_sched_output_session($self, request_id, text, length + 1, NULL);
    if (status != KVC_OK) {
      free(text);
      kvc_bind_check(status);
      return NULL;
    }
    return text;
  }
  /* Statistics (component "sched"); its named metrics through Stats.metric. */
  %newobject snapshot;
  Stats* snapshot() {
    kvc_stats* stats = NULL;
    kvc_bind_check(kvc_sched_snapshot($self, &stats));
    return stats;
  }
  uint64_t num_waiting() { return kvc_sched_num_waiting($self); }
  uint64_t num_running() { return kvc_sched_num_running($self); }
  uint64_t num_outputs() { return kvc_sched_num_outputs($self); }
}

/* One step's batch: per entry its request, tokens, positions, slots and block table; then the preempted
   and finished requests. */
typedef struct {} SchedPlan;
%extend SchedPlan {
  SchedPlan() {
    kvc_sched_plan* plan = NULL;
    kvc_bind_check(kvc_sched_plan_create(&plan));
    return plan;
  }
  ~SchedPlan() { kvc_sched_plan_destroy($self); }
  size_t count() { return kvc_sched_plan_count($self); }
  /* Tokens to compute, all entries together. */
  size_t num_tokens() { return kvc_sched_plan_num_tokens($self); }
  uint64_t request_id(size_t i) { return kvc_bind_plan_field($self, i, KVC_BIND_REQUEST_ID); }
  size_t entry_tokens(size_t i) { return (size_t)kvc_bind_plan_field($self, i, KVC_BIND_NUM_TOKENS); }
  size_t num_computed(size_t i) { return (size_t)kvc_bind_plan_field($self, i, KVC_BIND_NUM_COMPUTED); }
  bool samples(size_t i) { return kvc_bind_plan_field($self, i, KVC_BIND_SAMPLES) != 0; }
  void tokens_into(size_t i, int32_t* out_tokens, size_t capacity) {
    kvc_bind_check(kvc_sched_plan_tokens($self, i, out_tokens, capacity, NULL));
  }
  void positions_into(size_t i, int64_t* out_positions, size_t capacity) {
    kvc_bind_check(kvc_sched_plan_positions($self, i, out_positions, capacity, NULL));
  }
  void slots_into(size_t i, int64_t* out_slots, size_t capacity) {
    kvc_bind_check(kvc_sched_plan_slots($self, i, out_slots, capacity, NULL));
  }
  size_t block_table_size(size_t i) {
    size_t count = 0;
    kvc_bind_check(kvc_sched_plan_block_table($self, i, NULL, 0, &count));
    return count;
  }
  void block_table_into(size_t i, int32_t* out_blocks, size_t capacity) {
    kvc_bind_check(kvc_sched_plan_block_table($self, i, out_blocks, capacity, NULL));
  }
  size_t preempted_size() {
    size_t count = 0;
    kvc_bind_check(kvc_sched_plan_preempted($self, NULL, 0, &count));
    return count;
  }
  void preempted_into(uint64_t* out_ids, size_t capacity) {
    kvc_bind_check(kvc_sched_plan_preempted($self, out_ids, capacity, NULL));
  }
  size_t finished_size() {
    size_t count = 0;
    kvc_bind_check(kvc_sched_plan_finished($self, NULL, 0, &count));
    return count;
  }
  void finished_into(uint64_t* out_ids, size_t capacity) {
    kvc_bind_check(kvc_sched_plan_finished($self, out_ids, capacity, NULL));
  }
}
