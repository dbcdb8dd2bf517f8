// <srtp.h> as mediasoup 3.27 includes it: the part of the libsrtp 3 API (from
// versatica's libsrtp fork) that mediasoup calls, declared on top of Debian's
// libsrtp 2.5 and implemented in ../srtp3_compat.cpp.
//
// Differences bridged:
// - libsrtp 3 builds policies through an opaque handle and setters; libsrtp 2
//   takes a caller-filled struct of the same name (srtp_policy_t).
// - libsrtp 3 protects/unprotects from an input buffer into an output buffer
//   with size_t lengths; libsrtp 2 works in place with int lengths. The new
//   signatures are C++ overloads of libsrtp 2's C functions.
// - libsrtp 3 renamed srtp_remove_stream() and added two error codes.
//
// C++ only: mediasoup includes this header from C++ sources only.
#ifndef REENACT_COMPAT_SRTP3_H
#define REENACT_COMPAT_SRTP3_H

#ifndef __cplusplus
#error "this libsrtp 3 compatibility header is C++ only"
#endif

#include <srtp2/srtp.h>
#include <cstddef>
#include <cstdint>

// Error codes libsrtp 2 lacks. Only their distinctness matters to mediasoup
// (it maps codes to messages); the values are libsrtp 3's.
inline constexpr srtp_err_status_t srtp_err_status_buffer_small{ static_cast<srtp_err_status_t>(28) };
inline constexpr srtp_err_status_t srtp_err_status_cryptex_err{ static_cast<srtp_err_status_t>(29) };

// From here on, srtp_policy_t names the libsrtp 3 handle. libsrtp 2's struct
// stays reachable under another name for the implementation. (A typedef
// cannot be redeclared with another type, hence the macro.)
typedef srtp_policy_t reenact_srtp2_policy_t;
struct reenact_srtp3_policy;
typedef reenact_srtp3_policy* reenact_srtp3_policy_t;
#define srtp_policy_t reenact_srtp3_policy_t

srtp_err_status_t srtp_policy_create(srtp_policy_t* policy);
void srtp_policy_destroy(srtp_policy_t policy);
srtp_err_status_t srtp_policy_set_ssrc(srtp_policy_t policy, srtp_ssrc_t ssrc);
srtp_err_status_t srtp_policy_set_profile(srtp_policy_t policy, srtp_profile_t profile);
// Only one master key and no MKI are supported (all mediasoup uses).
srtp_err_status_t srtp_policy_add_key(
  srtp_policy_t policy,
  const uint8_t* key,
  size_t keyLen,
  const uint8_t* salt,
  size_t saltLen,
  const uint8_t* mki,
  size_t mkiLen);
srtp_err_status_t srtp_policy_set_allow_repeat_tx(srtp_policy_t policy, bool allow);
srtp_err_status_t srtp_policy_set_window_size(srtp_policy_t policy, size_t windowSize);

srtp_err_status_t srtp_create(srtp_t* session, srtp_policy_t policy);

// On entry *outLen is the capacity of |out|; on success it is the length
// written. |out| may equal |in|.
srtp_err_status_t srtp_protect(
  srtp_t ctx, const uint8_t* in, size_t inLen, uint8_t* out, size_t* outLen, size_t mkiIndex);
srtp_err_status_t srtp_unprotect(
  srtp_t ctx, const uint8_t* in, size_t inLen, uint8_t* out, size_t* outLen);
srtp_err_status_t srtp_protect_rtcp(
  srtp_t ctx, const uint8_t* in, size_t inLen, uint8_t* out, size_t* outLen, size_t mkiIndex);
srtp_err_status_t srtp_unprotect_rtcp(
  srtp_t ctx, const uint8_t* in, size_t inLen, uint8_t* out, size_t* outLen);

// |ssrc| in network byte order, as in libsrtp 2's srtp_remove_stream().
srtp_err_status_t srtp_stream_remove(srtp_t session, uint32_t ssrc);

#endif
