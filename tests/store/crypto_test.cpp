#include <jeweler/store/crypto.hpp>

#include <gtest/gtest.h>

#include <set>
#include <string>

namespace crypto = jeweler::store::crypto;

namespace {

const std::string kRfcSecret = "12345678901234567890";  // RFC 6238 Appendix B, SHA1

std::string rfc_code(std::int64_t t) {
  crypto::TotpParams p;
  p.digits = 8;
  return crypto::totp_code(reinterpret_cast<const unsigned char*>(kRfcSecret.data()),
                           kRfcSecret.size(), t, p);
}

}  // namespace

TEST(Totp, Rfc6238AppendixBSha1Vectors) {
  EXPECT_EQ(rfc_code(59), "94287082");
  EXPECT_EQ(rfc_code(1111111109), "07081804");
  EXPECT_EQ(rfc_code(1111111111), "14050471");
  EXPECT_EQ(rfc_code(1234567890), "89005924");
  EXPECT_EQ(rfc_code(2000000000), "69279037");
  EXPECT_EQ(rfc_code(20000000000), "65353130");
}

TEST(Totp, SixDigitsAreTheLowSixOfTheRfcValue) {
  const std::string b32 = crypto::base32_encode(
      reinterpret_cast<const unsigned char*>(kRfcSecret.data()), kRfcSecret.size());
  EXPECT_EQ(b32, "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
  EXPECT_EQ(crypto::totp_code(b32, 59), "287082");
  EXPECT_EQ(crypto::totp_code(b32, 1111111109), "081804");
  EXPECT_EQ(crypto::totp_code(b32, 2000000000), "279037");
}

TEST(Totp, VerifyAcceptsOneStepEitherSideOnly) {
  const std::string secret = "JBSWY3DPEHPK3PXP";
  const std::int64_t now = 1'700'000'015;  // inside step 56666667
  const std::int64_t step = now / 30;
  auto at = [&](std::int64_t s) { return crypto::totp_code(secret, s * 30); };
  EXPECT_EQ(crypto::verify_totp(secret, at(step), now), step);
  EXPECT_EQ(crypto::verify_totp(secret, at(step - 1), now), step - 1);
  EXPECT_EQ(crypto::verify_totp(secret, at(step + 1), now), step + 1);
  // Two steps away: refused (unless it happens to collide with a valid code).
  const std::string old = at(step - 2);
  if (old != at(step) && old != at(step - 1) && old != at(step + 1)) {
    EXPECT_FALSE(crypto::verify_totp(secret, old, now));
  }
  EXPECT_FALSE(crypto::verify_totp(secret, "", now));
  EXPECT_FALSE(crypto::verify_totp(secret, at(step) + "0", now));
  EXPECT_FALSE(crypto::verify_totp(secret, "abcdef", now));
  EXPECT_FALSE(crypto::verify_totp("not base32!", at(step), now));
  // Lower case and spaces in the secret are accepted.
  EXPECT_EQ(crypto::verify_totp("jbsw y3dp ehpk 3pxp", at(step), now), step);
}

TEST(Base32, DecodesTheDemoSecret) {
  auto key = crypto::base32_decode("JBSWY3DPEHPK3PXP");
  ASSERT_TRUE(key);
  const unsigned char expect[] = {'H', 'e', 'l', 'l', 'o', '!', 0xDE, 0xAD, 0xBE, 0xEF};
  ASSERT_EQ(key->size(), sizeof expect);
  EXPECT_TRUE(std::equal(key->begin(), key->end(), expect));
  EXPECT_FALSE(crypto::base32_decode("JBSWY3DP1"));   // '1' is not base32
  EXPECT_FALSE(crypto::base32_decode("JBSWY3DPEB"));  // non-zero trailing bits
  auto padded = crypto::base32_decode("MZXW6===");
  ASSERT_TRUE(padded);
  EXPECT_EQ(std::string(padded->begin(), padded->end()), "foo");
}

TEST(Totp, GeneratedSecretsAreRandomBase32) {
  auto a = crypto::generate_totp_secret(), b = crypto::generate_totp_secret();
  EXPECT_EQ(a.size(), 32u);
  EXPECT_NE(a, b);
  EXPECT_TRUE(crypto::base32_decode(a));
}

TEST(Password, HashVerifyAndReject) {
  const std::string hash = crypto::hash_password("correct horse");
  EXPECT_EQ(hash.rfind("$argon2id$", 0), 0u) << hash;
  EXPECT_NE(hash.find("m=65536,t=2"), std::string::npos) << hash;
  EXPECT_TRUE(crypto::verify_password("correct horse", hash));
  EXPECT_FALSE(crypto::verify_password("correct horsE", hash));
  EXPECT_FALSE(crypto::verify_password("", hash));
  EXPECT_FALSE(crypto::verify_password("correct horse", "garbage"));
  EXPECT_FALSE(crypto::verify_password("correct horse", ""));
  EXPECT_NE(crypto::hash_password("correct horse"), hash);  // random salt
  EXPECT_FALSE(crypto::password_needs_rehash(hash));
  crypto::PasswordParams weak{1, 8u * 1024 * 1024};
  const std::string weak_hash = crypto::hash_password("x", weak);
  EXPECT_TRUE(crypto::verify_password("x", weak_hash));
  EXPECT_TRUE(crypto::password_needs_rehash(weak_hash));
}

TEST(Password, UnicodeAndBinaryPasswords) {
  const std::string pw = std::string("pässwörd\xF0\x9F\x92\x8E") + std::string(1, '\0') + "tail";
  const std::string hash = crypto::hash_password(pw);
  EXPECT_TRUE(crypto::verify_password(pw, hash));
  EXPECT_FALSE(crypto::verify_password(pw.substr(0, pw.size() - 1), hash));
}

TEST(Password, DummyVerifyAlwaysFailsAndHasTheRealCost) {
  crypto::init();
  EXPECT_FALSE(crypto::verify_password_dummy("jeweler-dummy-password-never-valid"));
  EXPECT_FALSE(crypto::verify_password_dummy("anything"));
  // The dummy is a real Argon2id hash with the default parameters, so an
  // unknown user costs one full verification like a known one.
  const std::string& dummy = crypto::detail::dummy_hash();
  EXPECT_EQ(dummy.rfind("$argon2id$v=19$m=65536,t=2,p=1$", 0), 0u) << dummy;
  EXPECT_FALSE(crypto::password_needs_rehash(dummy));
  EXPECT_TRUE(crypto::verify_password("jeweler-dummy-password-never-valid", dummy));
}

TEST(Crypto, ConstantTimeEqual) {
  EXPECT_TRUE(crypto::constant_time_equal("123456", "123456"));
  EXPECT_FALSE(crypto::constant_time_equal("123456", "123457"));
  EXPECT_FALSE(crypto::constant_time_equal("123456", "12345"));
  EXPECT_TRUE(crypto::constant_time_equal("", ""));
}

TEST(Crypto, RandomIdsAreUniqueAndValid) {
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    auto id = crypto::random_id("cus_");
    ASSERT_EQ(id.size(), 30u);
    ASSERT_EQ(id.rfind("cus_", 0), 0u);
    for (char c : id.substr(4)) ASSERT_TRUE((c >= 'a' && c <= 'z') || (c >= '2' && c <= '7'));
    seen.insert(id);
  }
  EXPECT_EQ(seen.size(), 1000u);
}

TEST(Crypto, Sha256Hex) {
  EXPECT_EQ(crypto::sha256_hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(crypto::sha256_hex(""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}
