/* raw_curl: the baseline the Lua client is measured against.
 *
 *   raw_curl URL BODY N CONCURRENCY
 *
 * Sends N POST requests (application/x-www-form-urlencoded, body BODY) to URL.
 * CONCURRENCY=1: one easy handle and curl_easy_perform in a loop, so the
 * keep-alive connection is reused. CONCURRENCY>1: one multi handle keeping
 * CONCURRENCY transfers in flight, each easy handle reused as soon as its
 * transfer ends, waiting with curl_multi_poll. Every response body is
 * accumulated in memory, as a client library would before decoding it, and
 * every response must be HTTP 200.
 *
 * Prints one line:
 *   requests=N concurrency=C seconds=S rps=R cpu_us_per_req=U failures=F
 * where CPU is user+sys time (getrusage) spent during the measured loop.
 * Exits 1 if any request failed. The run is bounded: it gives up after
 * MAX_SECONDS of wall time. */
#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#define MAX_SECONDS 300.0
#define MAX_BODY (16u * 1024u * 1024u) /* a response larger than this fails */
#define MAX_CONCURRENCY 1024

struct buf {
  char *data;
  size_t len, cap;
  int overflow;
};

struct xfer {
  CURL *easy;
  struct buf body;
};

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu_s(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
         (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static size_t on_write(char *ptr, size_t size, size_t nmemb, void *ud) {
  struct buf *b = ud;
  size_t n = size * nmemb;
  if (b->len + n > MAX_BODY) {
    b->overflow = 1;
    return 0; /* abort the transfer: CURLE_WRITE_ERROR */
  }
  if (b->len + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + n + 1) cap *= 2;
    char *p = realloc(b->data, cap);
    if (!p) return 0;
    b->data = p;
    b->cap = cap;
  }
  memcpy(b->data + b->len, ptr, n);
  b->len += n;
  b->data[b->len] = '\0';
  return n;
}

static CURL *make_easy(const char *url, const char *body, struct curl_slist *hdrs,
                       struct buf *b) {
  CURL *e = curl_easy_init();
  if (!e) return NULL;
  curl_easy_setopt(e, CURLOPT_URL, url);
  curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
  curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, hdrs);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_write);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, b);
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 10000L);
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
  /* The same request bytes as c:call sends (user agent, gzip accepted,
   * the Accept and empty Expect headers), set once per handle as a careful
   * C program would, so the ratio measures the client, not the headers. */
  curl_easy_setopt(e, CURLOPT_USERAGENT, "billetterie/0.1.0 (Lua 5.4; libcurl 7.88.1)");
  curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
  curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
  return e;
}

/* Returns 1 if the finished transfer is a success, 0 otherwise; reports the
 * first failure on stderr. */
static int check(CURL *e, CURLcode rc, const struct buf *b, long *failures) {
  long status = 0;
  if (rc == CURLE_OK) curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
  if (rc == CURLE_OK && status == 200 && b->len > 0) return 1;
  if (*failures == 0) {
    if (rc != CURLE_OK)
      fprintf(stderr, "raw_curl: first failure: %s%s\n", curl_easy_strerror(rc),
              b->overflow ? " (response too large)" : "");
    else
      fprintf(stderr, "raw_curl: first failure: HTTP %ld, %zu body bytes\n", status,
              b->len);
  }
  (*failures)++;
  return 0;
}

static long run_sequential(const char *url, const char *body, long n,
                           struct curl_slist *hdrs, long *done) {
  struct buf b = {0};
  long failures = 0;
  CURL *e = make_easy(url, body, hdrs, &b);
  if (!e) {
    fprintf(stderr, "raw_curl: curl_easy_init failed\n");
    return n;
  }
  double deadline = now_s() + MAX_SECONDS;
  for (*done = 0; *done < n; (*done)++) {
    b.len = 0;
    b.overflow = 0;
    CURLcode rc = curl_easy_perform(e);
    check(e, rc, &b, &failures);
    if ((*done & 1023) == 0 && now_s() > deadline) {
      fprintf(stderr, "raw_curl: gave up after %.0f s\n", MAX_SECONDS);
      failures += n - *done;
      break;
    }
  }
  curl_easy_cleanup(e);
  free(b.data);
  return failures;
}

static long run_multi(const char *url, const char *body, long n, int conc,
                      struct curl_slist *hdrs, long *done) {
  long failures = 0, started = 0;
  *done = 0;
  CURLM *m = curl_multi_init();
  struct xfer *x = calloc((size_t)conc, sizeof *x);
  if (!m || !x) {
    fprintf(stderr, "raw_curl: out of memory\n");
    free(x);
    if (m) curl_multi_cleanup(m);
    return n;
  }
  int nx = conc < n ? conc : (int)n;
  for (int i = 0; i < nx; i++) {
    x[i].easy = make_easy(url, body, hdrs, &x[i].body);
    if (!x[i].easy) {
      fprintf(stderr, "raw_curl: curl_easy_init failed\n");
      failures = n;
      goto out;
    }
    curl_easy_setopt(x[i].easy, CURLOPT_PRIVATE, (void *)&x[i]);
    curl_multi_add_handle(m, x[i].easy);
    started++;
  }

  double deadline = now_s() + MAX_SECONDS;
  long polls = 0;
  while (*done < n) {
    int running = 0;
    CURLMcode mc = curl_multi_perform(m, &running);
    if (mc != CURLM_OK) {
      fprintf(stderr, "raw_curl: curl_multi_perform: %s\n", curl_multi_strerror(mc));
      failures += n - *done;
      break;
    }
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(m, &left)) != NULL) {
      if (msg->msg != CURLMSG_DONE) continue;
      CURL *e = msg->easy_handle;
      CURLcode rc = msg->data.result;
      struct xfer *t = NULL;
      curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&t);
      check(e, rc, &t->body, &failures);
      (*done)++;
      curl_multi_remove_handle(m, e);
      if (started < n) { /* reuse the handle and its connection */
        t->body.len = 0;
        t->body.overflow = 0;
        curl_multi_add_handle(m, e);
        started++;
        running++;
      }
    }
    if (*done >= n) break;
    if ((++polls & 255) == 0 && now_s() > deadline) {
      fprintf(stderr, "raw_curl: gave up after %.0f s\n", MAX_SECONDS);
      failures += n - *done;
      break;
    }
    if (running > 0) {
      mc = curl_multi_poll(m, NULL, 0, 1000, NULL);
      if (mc != CURLM_OK) {
        fprintf(stderr, "raw_curl: curl_multi_poll: %s\n", curl_multi_strerror(mc));
        failures += n - *done;
        break;
      }
    }
  }
out:
  for (int i = 0; i < nx; i++) {
    if (!x[i].easy) continue;
    curl_multi_remove_handle(m, x[i].easy);
    curl_easy_cleanup(x[i].easy);
    free(x[i].body.data);
  }
  free(x);
  curl_multi_cleanup(m);
  return failures;
}

static long parse_long(const char *s, const char *what, long lo, long hi) {
  char *end;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (errno || *s == '\0' || *end != '\0' || v < lo || v > hi) {
    fprintf(stderr, "raw_curl: bad %s '%s' (expected %ld..%ld)\n", what, s, lo, hi);
    exit(2);
  }
  return v;
}

int main(int argc, char **argv) {
  if (argc != 5) {
    fprintf(stderr, "usage: raw_curl URL BODY N CONCURRENCY\n");
    return 2;
  }
  const char *url = argv[1], *body = argv[2];
  long n = parse_long(argv[3], "N", 1, 100000000L);
  int conc = (int)parse_long(argv[4], "CONCURRENCY", 1, MAX_CONCURRENCY);

  if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
    fprintf(stderr, "raw_curl: curl_global_init failed\n");
    return 1;
  }
  struct curl_slist *hdrs =
      curl_slist_append(NULL, "Content-Type: application/x-www-form-urlencoded");
  hdrs = curl_slist_append(hdrs, "Accept: application/json, application/xml;q=0.9, */*;q=0.1");
  hdrs = curl_slist_append(hdrs, "Expect:");

  long done = 0;
  double t0 = now_s(), c0 = cpu_s();
  long failures = conc == 1 ? run_sequential(url, body, n, hdrs, &done)
                            : run_multi(url, body, n, conc, hdrs, &done);
  double secs = now_s() - t0, cpu = cpu_s() - c0;

  printf("requests=%ld concurrency=%d seconds=%.3f rps=%.0f cpu_us_per_req=%.2f "
         "failures=%ld\n",
         n, conc, secs, secs > 0 ? (double)n / secs : 0.0, cpu * 1e6 / (double)n,
         failures);
  curl_slist_free_all(hdrs);
  curl_global_cleanup();
  return failures ? 1 : 0;
}
