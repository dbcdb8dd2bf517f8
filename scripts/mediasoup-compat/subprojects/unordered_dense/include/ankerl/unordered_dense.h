// Minimal stand-in for <ankerl/unordered_dense.h> (martinus/unordered_dense),
// which Debian 12 does not package.
//
// mediasoup only uses the map/set/hash names of that library, through the
// subset of its interface that std::unordered_map/set share, so the standard
// containers are drop-in replacements:
// - They are slower, which does not matter at this project's scale.
// - They keep references valid across inserts and erases where the dense maps
//   do not, so code written for the dense maps stays correct.
// - Iteration order differs (the dense maps iterate in insertion order until
//   something is erased). In mediasoup 3.27.1 the only places that take
//   begin() of such a map either hold a single entry or pick an arbitrary one
//   (ActiveSpeakerObserver's initial candidate), so behaviour is unchanged.
#ifndef REENACT_COMPAT_ANKERL_UNORDERED_DENSE_H
#define REENACT_COMPAT_ANKERL_UNORDERED_DENSE_H

#include <cstddef>
#include <functional>
#include <memory>
#include <unordered_map>
#include <unordered_set>
#include <utility>

namespace ankerl::unordered_dense
{
	// A class template (rather than an alias of std::hash) so that code may
	// still specialize ankerl::unordered_dense::hash for its own key types.
	template<class T, class Enable = void>
	struct hash : std::hash<T>
	{
	};

	template<
	  class Key,
	  class T,
	  class Hash      = hash<Key>,
	  class KeyEqual  = std::equal_to<Key>,
	  class Allocator = std::allocator<std::pair<const Key, T>>>
	using map = std::unordered_map<Key, T, Hash, KeyEqual, Allocator>;

	template<
	  class Key,
	  class Hash      = hash<Key>,
	  class KeyEqual  = std::equal_to<Key>,
	  class Allocator = std::allocator<Key>>
	using set = std::unordered_set<Key, Hash, KeyEqual, Allocator>;
} // namespace ankerl::unordered_dense

#endif
