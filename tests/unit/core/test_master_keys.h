// Master keys for tests of sealing: random keys and keyrings made of them.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <utility>
#include <vector>

#include "core/crypto.h"
#include "core/master_key.h"

namespace till::test {

inline MasterKey random_master_key(uint32_t version) {
  MasterKey key{.version = version};
  crypto::random_bytes(key.key);
  return key;
}

inline MasterKeyring keyring_of(std::vector<MasterKey> keys) {
  auto keyring = MasterKeyring::from_keys(std::move(keys));
  EXPECT_TRUE(keyring);
  return std::move(*keyring);
}

}  // namespace till::test
