#!/usr/bin/env ruby
# Reference oracle for chef-sync's signing tests, backed by Debian's ruby-mixlib-authentication
# (the library Chef itself signs and verifies with).
#
#   ruby mixlib_oracle.rb sign   < requests.json   # => [{"headers": {...}}, ...]
#   ruby mixlib_oracle.rb verify < requests.json   # => [{"valid": true|false, "error": ...}, ...]
#
# Input is a JSON object {"key_pem": PEM, "skew": seconds, "requests": [...]}; each request has
# method, path, body, and for sign: user_id, timestamp, version, server_api_version; for verify:
# headers (name => value). PEM is a private key for sign and a public key for verify.

# openssl must be loaded before mixlib on Ruby 3.1, or mixlib's digest require fails.
require "openssl"
require "json"
require "mixlib/authentication"
require "mixlib/authentication/signedheaderauth"
require "mixlib/authentication/signatureverification"

# The request object SignatureVerification reads: Rack-style env plus method/path/body.
OracleRequest = Struct.new(:method, :path, :env, :params, :raw_post)

def sign_all(input)
  key = OpenSSL::PKey::RSA.new(input.fetch("key_pem"))
  input.fetch("requests").map do |r|
    version = r.fetch("version")
    signer = Mixlib::Authentication::SignedHeaderAuth.signing_object(
      http_method: r.fetch("method").downcase.to_sym,
      path: r.fetch("path"),
      body: r.fetch("body"),
      timestamp: r.fetch("timestamp"),
      user_id: r.fetch("user_id"),
      proto_version: version,
      headers: { "X-Ops-Server-API-Version" => r.fetch("server_api_version") }
    )
    algorithm = Mixlib::Authentication::SignedHeaderAuth::ALGORITHM_FOR_VERSION.fetch(version)
    headers = signer.sign(key, sign_algorithm: algorithm, sign_version: version)
    headers["X-Ops-Server-API-Version"] = r.fetch("server_api_version")
    { "headers" => headers }
  end
end

def verify_all(input)
  key = OpenSSL::PKey::RSA.new(input.fetch("key_pem"))
  skew = input.fetch("skew")
  input.fetch("requests").map do |r|
    env = { "HTTP_HOST" => "127.0.0.1" }
    r.fetch("headers").each { |k, v| env["HTTP_" + k.upcase.tr("-", "_")] = v }
    request = OracleRequest.new(r.fetch("method"), r.fetch("path"), env, {}, r.fetch("body"))
    verifier = Mixlib::Authentication::SignatureVerification.new
    begin
      ok = !verifier.authenticate_user_request(request, key, skew).nil?
      { "valid" => ok }
    rescue Mixlib::Authentication::AuthenticationError => e
      { "valid" => false, "error" => e.message }
    end
  end
end

mode = ARGV.fetch(0) { abort "usage: mixlib_oracle.rb sign|verify < input.json" }
input = JSON.parse($stdin.read)
out = case mode
      when "sign" then sign_all(input)
      when "verify" then verify_all(input)
      else abort "unknown mode #{mode}"
      end
puts JSON.generate(out)
