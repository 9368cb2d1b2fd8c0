// flotilla's one native piece: sendfile(2) from a file to a socket on a thread of its own, so serving a blob
// from disk copies nothing through JavaScript. Linux only; src/native/send-file.ts falls back to the
// JavaScript path when this is not built.
//
//   sendFile(socketFd, fileFd, offset, length, done) -> job
//     Sends `length` bytes of the file from `offset`. Both fds are duplicated, so the caller may close its own
//     at any time. The socket stays non-blocking: on EAGAIN the thread waits in poll(2) for it to be writable
//     (or for cancel). `done(errno, sent)` is called once on the JS thread: errno 0 when every byte was sent,
//     -1 when the file ended first, ECANCELED after cancel(job), else the errno of sendfile or poll.
//   cancel(job)
//     Makes the thread stop at once (an eventfd wakes its poll); `done` still follows.
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <sys/sendfile.h>
#include <unistd.h>
#include <node_api.h>

typedef struct {
  int out_fd;
  int in_fd;
  int wake_fd;
  int64_t offset;
  int64_t length;
  int64_t sent;
  int err;
  atomic_int cancelled;
  atomic_int done;
  /* One for the thread (until `done` ran), one for the JS handle (until it is collected). */
  atomic_int refs;
  napi_threadsafe_function tsfn;
} job_t;

static void job_unref (job_t *job) {
  if (atomic_fetch_sub(&job->refs, 1) == 1) {
    if (job->wake_fd >= 0) close(job->wake_fd);
    free(job);
  }
}

static void *run (void *arg) {
  job_t *job = arg;
  while (job->sent < job->length) {
    if (atomic_load(&job->cancelled)) { job->err = ECANCELED; break; }
    off_t off = (off_t)(job->offset + job->sent);
    int64_t left = job->length - job->sent;
    size_t want = left > (1 << 30) ? (size_t)(1 << 30) : (size_t)left;
    ssize_t n = sendfile(job->out_fd, job->in_fd, &off, want);
    if (n > 0) { job->sent += n; continue; }
    if (n == 0) { job->err = -1; break; }
    if (errno == EINTR) continue;
    if (errno == EAGAIN) {
      struct pollfd fds[2] = { { job->out_fd, POLLOUT, 0 }, { job->wake_fd, POLLIN, 0 } };
      if (poll(fds, 2, -1) < 0 && errno != EINTR) { job->err = errno; break; }
      continue;
    }
    job->err = errno;
    break;
  }
  close(job->out_fd);
  close(job->in_fd);
  atomic_store(&job->done, 1);
  napi_threadsafe_function tsfn = job->tsfn;
  if (napi_call_threadsafe_function(tsfn, job, napi_tsfn_blocking) != napi_ok) job_unref(job);
  napi_release_threadsafe_function(tsfn, napi_tsfn_release);
  return NULL;
}

static void call_done (napi_env env, napi_value callback, void *context, void *data) {
  (void)context;
  job_t *job = data;
  /* The eventfd goes now, not when the handle is collected. cancel() runs on this thread too, so it cannot
     write to the fd between this check and the close. */
  close(job->wake_fd);
  job->wake_fd = -1;
  if (env != NULL && callback != NULL) {
    napi_value args[2], undefined;
    napi_create_int32(env, job->err, &args[0]);
    napi_create_double(env, (double)job->sent, &args[1]);
    napi_get_undefined(env, &undefined);
    napi_call_function(env, undefined, callback, 2, args, NULL);
  }
  job_unref(job);
}

static void finalize_handle (napi_env env, void *data, void *hint) {
  (void)env; (void)hint;
  job_unref(data);
}

static napi_value throw_errno (napi_env env, const char *what, int err) {
  napi_value code, message, error;
  char text[96];
  snprintf(text, sizeof text, "%s failed (errno %d)", what, err);
  napi_create_int32(env, err, &code);
  napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &message);
  napi_create_error(env, NULL, message, &error);
  napi_set_named_property(env, error, "errno", code);
  napi_throw(env, error);
  return NULL;
}

static napi_value send_file (napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int32_t out_fd, in_fd;
  int64_t offset, length;
  napi_valuetype cb_type;
  if (argc < 5 || napi_get_value_int32(env, argv[0], &out_fd) != napi_ok || napi_get_value_int32(env, argv[1], &in_fd) != napi_ok ||
      napi_get_value_int64(env, argv[2], &offset) != napi_ok || napi_get_value_int64(env, argv[3], &length) != napi_ok ||
      napi_typeof(env, argv[4], &cb_type) != napi_ok || cb_type != napi_function || out_fd < 0 || in_fd < 0 || offset < 0 || length < 0) {
    napi_throw_type_error(env, NULL, "sendFile(socketFd, fileFd, offset, length, done)");
    return NULL;
  }
  job_t *job = calloc(1, sizeof *job);
  if (job == NULL) return throw_errno(env, "calloc", ENOMEM);
  job->offset = offset;
  job->length = length;
  job->out_fd = job->in_fd = job->wake_fd = -1;
  atomic_init(&job->refs, 2);
  job->out_fd = fcntl(out_fd, F_DUPFD_CLOEXEC, 0);
  job->in_fd = job->out_fd < 0 ? -1 : fcntl(in_fd, F_DUPFD_CLOEXEC, 0);
  job->wake_fd = job->in_fd < 0 ? -1 : eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (job->wake_fd < 0) {
    int err = errno;
    if (job->out_fd >= 0) close(job->out_fd);
    if (job->in_fd >= 0) close(job->in_fd);
    free(job);
    return throw_errno(env, "dup/eventfd", err);
  }
  napi_value name;
  napi_create_string_utf8(env, "flotilla.sendFile", NAPI_AUTO_LENGTH, &name);
  napi_status status = napi_create_threadsafe_function(env, argv[4], NULL, name, 0, 1, NULL, NULL, NULL, call_done, &job->tsfn);
  pthread_t thread;
  pthread_attr_t attr;
  int err = status == napi_ok ? pthread_attr_init(&attr) : EINVAL;
  if (err == 0) {
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, 64 * 1024);
    err = pthread_create(&thread, &attr, run, job);
    pthread_attr_destroy(&attr);
  }
  if (err != 0) {
    if (status == napi_ok) napi_release_threadsafe_function(job->tsfn, napi_tsfn_abort);
    close(job->out_fd);
    close(job->in_fd);
    close(job->wake_fd);
    free(job);
    return throw_errno(env, "pthread_create", err);
  }
  napi_value handle;
  napi_create_external(env, job, finalize_handle, NULL, &handle);
  return handle;
}

static napi_value cancel (napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  void *data = NULL;
  napi_valuetype type;
  if (argc < 1 || napi_typeof(env, argv[0], &type) != napi_ok || type != napi_external || napi_get_value_external(env, argv[0], &data) != napi_ok) {
    napi_throw_type_error(env, NULL, "cancel(job)");
    return NULL;
  }
  job_t *job = data;
  if (job->wake_fd >= 0 && !atomic_load(&job->done)) {
    atomic_store(&job->cancelled, 1);
    uint64_t one = 1;
    ssize_t ignored = write(job->wake_fd, &one, sizeof one);
    (void)ignored;
  }
  return NULL;
}

NAPI_MODULE_INIT (/* env, exports */) {
  napi_property_descriptor props[] = {
    { "sendFile", NULL, send_file, NULL, NULL, NULL, napi_enumerable, NULL },
    { "cancel", NULL, cancel, NULL, NULL, NULL, napi_enumerable, NULL },
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}
