// libsrtp 3 API (see include/srtp.h) implemented with Debian's libsrtp 2.5.

#include "srtp.h"
#include <climits>
#include <cstring>
#include <new>
#include <vector>

struct reenact_srtp3_policy
{
	// Value-initialised: libsrtp 2 treats zeroed fields as "not used".
	reenact_srtp2_policy_t legacy{};
	// libsrtp 2 wants the master key immediately followed by the master salt,
	// kept alive until srtp_create() has copied it.
	std::vector<uint8_t> keyAndSalt;
	bool hasProfile{ false };
	srtp_profile_t profile{ srtp_profile_reserved };
};

namespace
{
	// Room libsrtp 2 needs after an RTP packet to append its trailer (auth
	// tag, possible MKI), per the warning on srtp_protect() in srtp.h.
	constexpr size_t RtpTrailerRoom{ SRTP_MAX_TRAILER_LEN };
	// SRTCP additionally appends the 4-byte E flag + SRTCP index word.
	constexpr size_t RtcpTrailerRoom{ SRTP_MAX_TRAILER_LEN + 4 };

	// Copies |in| into |out| (if they differ) so that libsrtp 2 can work in
	// place there, after checking that |out| has |room| spare bytes and that
	// the result fits libsrtp 2's int lengths.
	srtp_err_status_t StageInPlace(
	  const uint8_t* in, size_t inLen, uint8_t* out, const size_t* outLen, size_t room, int* intLen)
	{
		if (in == nullptr || out == nullptr || outLen == nullptr)
		{
			return srtp_err_status_bad_param;
		}

		if (inLen > static_cast<size_t>(INT_MAX) - room)
		{
			return srtp_err_status_bad_param;
		}

		if (*outLen < inLen + room)
		{
			return srtp_err_status_buffer_small;
		}

		if (out != in)
		{
			std::memmove(out, in, inLen);
		}

		*intLen = static_cast<int>(inLen);

		return srtp_err_status_ok;
	}

	// Signature of libsrtp 2's in-place functions. Casting a name to it picks
	// libsrtp 2's C function over the size_t overload declared in srtp.h.
	using InPlaceFn = srtp_err_status_t (*)(srtp_t, void*, int*);

	// Runs libsrtp 2's in-place |fn| on |buf| and reports the new length
	// through |outLen|.
	srtp_err_status_t RunInPlace(InPlaceFn fn, srtp_t ctx, uint8_t* buf, int len, size_t* outLen)
	{
		const srtp_err_status_t err = fn(ctx, static_cast<void*>(buf), &len);

		if (err == srtp_err_status_ok)
		{
			*outLen = static_cast<size_t>(len);
		}

		return err;
	}

} // namespace

srtp_err_status_t srtp_policy_create(srtp_policy_t* policy)
{
	if (policy == nullptr)
	{
		return srtp_err_status_bad_param;
	}

	*policy = new (std::nothrow) reenact_srtp3_policy();

	return *policy != nullptr ? srtp_err_status_ok : srtp_err_status_alloc_fail;
}

void srtp_policy_destroy(srtp_policy_t policy)
{
	delete policy;
}

srtp_err_status_t srtp_policy_set_ssrc(srtp_policy_t policy, srtp_ssrc_t ssrc)
{
	if (policy == nullptr)
	{
		return srtp_err_status_bad_param;
	}

	policy->legacy.ssrc = ssrc;

	return srtp_err_status_ok;
}

srtp_err_status_t srtp_policy_set_profile(srtp_policy_t policy, srtp_profile_t profile)
{
	if (policy == nullptr)
	{
		return srtp_err_status_bad_param;
	}

	srtp_err_status_t err = srtp_crypto_policy_set_from_profile_for_rtp(&policy->legacy.rtp, profile);

	if (err == srtp_err_status_ok)
	{
		err = srtp_crypto_policy_set_from_profile_for_rtcp(&policy->legacy.rtcp, profile);
	}

	if (err != srtp_err_status_ok)
	{
		return err;
	}

	policy->hasProfile = true;
	policy->profile    = profile;

	return srtp_err_status_ok;
}

srtp_err_status_t srtp_policy_add_key(
  srtp_policy_t policy,
  const uint8_t* key,
  size_t keyLen,
  const uint8_t* salt,
  size_t saltLen,
  const uint8_t* mki,
  size_t mkiLen)
{
	// Lengths are only known once the profile is set, and a second key would
	// need libsrtp 2's MKI machinery, which mediasoup never uses.
	if (policy == nullptr || !policy->hasProfile || !policy->keyAndSalt.empty())
	{
		return srtp_err_status_bad_param;
	}

	if (mki != nullptr || mkiLen != 0)
	{
		return srtp_err_status_bad_mki;
	}

	if (
	  key == nullptr || salt == nullptr ||
	  keyLen != srtp_profile_get_master_key_length(policy->profile) ||
	  saltLen != srtp_profile_get_master_salt_length(policy->profile))
	{
		return srtp_err_status_bad_param;
	}

	policy->keyAndSalt.assign(key, key + keyLen);
	policy->keyAndSalt.insert(policy->keyAndSalt.end(), salt, salt + saltLen);
	policy->legacy.key = policy->keyAndSalt.data();

	return srtp_err_status_ok;
}

srtp_err_status_t srtp_policy_set_allow_repeat_tx(srtp_policy_t policy, bool allow)
{
	if (policy == nullptr)
	{
		return srtp_err_status_bad_param;
	}

	policy->legacy.allow_repeat_tx = allow ? 1 : 0;

	return srtp_err_status_ok;
}

srtp_err_status_t srtp_policy_set_window_size(srtp_policy_t policy, size_t windowSize)
{
	if (policy == nullptr)
	{
		return srtp_err_status_bad_param;
	}

	policy->legacy.window_size = static_cast<unsigned long>(windowSize);

	return srtp_err_status_ok;
}

srtp_err_status_t srtp_create(srtp_t* session, srtp_policy_t policy)
{
	if (session == nullptr || policy == nullptr || policy->keyAndSalt.empty())
	{
		return srtp_err_status_bad_param;
	}

	// A single policy, not a list.
	policy->legacy.next = nullptr;

	// libsrtp 2's C function, selected by its struct-pointer parameter.
	const reenact_srtp2_policy_t* legacy = &policy->legacy;

	return srtp_create(session, legacy);
}

srtp_err_status_t srtp_protect(
  srtp_t ctx, const uint8_t* in, size_t inLen, uint8_t* out, size_t* outLen, size_t mkiIndex)
{
	if (mkiIndex != 0)
	{
		return srtp_err_status_bad_mki;
	}

	int len{ 0 };
	srtp_err_status_t err = StageInPlace(in, inLen, out, outLen, RtpTrailerRoom, &len);

	if (err != srtp_err_status_ok)
	{
		return err;
	}

	return RunInPlace(static_cast<InPlaceFn>(srtp_protect), ctx, out, len, outLen);
}

srtp_err_status_t srtp_unprotect(
  srtp_t ctx, const uint8_t* in, size_t inLen, uint8_t* out, size_t* outLen)
{
	int len{ 0 };
	// Unprotecting only shrinks the packet: no extra room needed.
	srtp_err_status_t err = StageInPlace(in, inLen, out, outLen, 0, &len);

	if (err != srtp_err_status_ok)
	{
		return err;
	}

	return RunInPlace(static_cast<InPlaceFn>(srtp_unprotect), ctx, out, len, outLen);
}

srtp_err_status_t srtp_protect_rtcp(
  srtp_t ctx, const uint8_t* in, size_t inLen, uint8_t* out, size_t* outLen, size_t mkiIndex)
{
	if (mkiIndex != 0)
	{
		return srtp_err_status_bad_mki;
	}

	int len{ 0 };
	srtp_err_status_t err = StageInPlace(in, inLen, out, outLen, RtcpTrailerRoom, &len);

	if (err != srtp_err_status_ok)
	{
		return err;
	}

	return RunInPlace(static_cast<InPlaceFn>(srtp_protect_rtcp), ctx, out, len, outLen);
}

srtp_err_status_t srtp_unprotect_rtcp(
  srtp_t ctx, const uint8_t* in, size_t inLen, uint8_t* out, size_t* outLen)
{
	int len{ 0 };
	srtp_err_status_t err = StageInPlace(in, inLen, out, outLen, 0, &len);

	if (err != srtp_err_status_ok)
	{
		return err;
	}

	return RunInPlace(static_cast<InPlaceFn>(srtp_unprotect_rtcp), ctx, out, len, outLen);
}

srtp_err_status_t srtp_stream_remove(srtp_t session, uint32_t ssrc)
{
	return srtp_remove_stream(session, ssrc);
}
